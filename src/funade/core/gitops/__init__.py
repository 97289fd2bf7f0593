"""GitOps: Argo CD-compatible Applications, webhooks and notifications as pure data."""
