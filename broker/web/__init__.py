"""Shared HTTP plumbing for every edge: services, middlewares, rendering, health."""
