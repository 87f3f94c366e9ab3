"""Publishing records into a product, and reading them back through a view."""
