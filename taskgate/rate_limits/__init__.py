"""Rate limiting both services share: window rules and statuses, the per-user rule, the counting."""
