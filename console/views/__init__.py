"""The console's pages, one module per area: projects, members, robots, artifacts, admin."""
