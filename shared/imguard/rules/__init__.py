"""Local rules: block, replace and allow lists applied on the server before CI."""
