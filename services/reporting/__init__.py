"""The reporting service: read models across cooperatives, programme view, indicators, dashboard."""
