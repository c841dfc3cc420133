"""The Mercure protocol plug-in (issue 11): /.well-known/mercure, both protocol generations."""
