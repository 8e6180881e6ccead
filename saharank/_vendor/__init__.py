"""Third-party code vendored by saharank, each with its licence beside it (see the subpackages)."""
