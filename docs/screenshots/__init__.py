"""The README's screenshots and the script that takes them."""
