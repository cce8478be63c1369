"""The server's composition: the HTTP app, the roles (serve, gateway, projector, api, webhooks) and
the command line that starts them."""
