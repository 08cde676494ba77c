"""The demo storefront: its pages, its stylesheet and the `seed_demo` command."""
