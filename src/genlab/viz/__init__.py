"""Pictures people would rather look at than read: image grids, strips and scatter plots (PNG)."""
