"""The web app (pages and the JSON API); ``app.create_app`` builds it."""
