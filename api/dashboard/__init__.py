"""The dashboard: a web page served at / that reads only the documented read API."""
