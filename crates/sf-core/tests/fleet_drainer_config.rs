//! `EngineConfig::for_orphan_drainer` (used by the simulator's fleet, which
//! builds engines without a `Config`) is exactly `Config::for_orphan_drainer`
//! seen from the engine.

use sf_core::config::Config;
use sf_core::engine::EngineConfig;

#[test]
fn fleet_drainer_engine_config_matches_config_for_orphan_drainer() {
    for conf in [
        "ws::addr=a:1;sf_dir=/tmp/sf;sender_id=me;drain_orphans=on;",
        "ws::addr=a:1,b:2;sf_dir=/tmp/sf;sender_id=me;drain_orphans=on;close_flush_timeout_millis=500;initial_connect_retry=on;",
    ] {
        let c = Config::from_conf(conf).unwrap();
        let via_config = EngineConfig::try_from(&c.for_orphan_drainer("other").unwrap()).unwrap();
        let on_slot = EngineConfig::try_from(&c.for_slot("other").unwrap()).unwrap();
        assert_ne!(on_slot, via_config, "{conf}: the drainer differs");
        assert_eq!(on_slot.for_orphan_drainer(), via_config, "{conf}");
    }
}
