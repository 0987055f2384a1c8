"""Nightscout v1 compatibility: a site per profile under /ns/<site-id>."""
