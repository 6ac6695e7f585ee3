//! The real-time service at `GET /ws/connect` (SPEC §5): connection handling, the hub,
//! subscriptions, heartbeat and replay from the event log. Empty until the real-time issue lands.
