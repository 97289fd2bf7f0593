"""Test package (unique module names for same-named test files across tiers)."""
