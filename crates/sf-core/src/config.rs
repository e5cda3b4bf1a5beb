//! The connect string (`ws::addr=…;sf_dir=…;…`): a pure parser into a typed,
//! validated configuration (sf-client §4, failover.md keys).
