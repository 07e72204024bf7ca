"""Development tools. Never deployed: chalice packages only app.py and chalicelib/."""
