//! Fuzzes both ends of the control session: the bytes are read as a
//! `ControlMessage` (what a scraper takes in: each pool validated, each
//! target built on its pool, as the scraper's manager does) and as a
//! `ScraperMessage` (what a control plane takes in: a Hello validated, a
//! Status turned into reports). Nothing panics.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use control_plane::coordinator::inputs::{reports, Hello};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use scrapegrid_proto::v1 as pb;
use scraper_node::target::{PoolConfig, TargetSpec};

fuzz_target!(|data: &[u8]| {
    if let Ok(pb::ControlMessage {
        msg: Some(pb::control_message::Msg::Assignment(a)),
    }) = pb::ControlMessage::decode(data)
    {
        let pools: HashMap<String, Arc<PoolConfig>> = a
            .pools
            .iter()
            .filter_map(|p| Some((p.name.clone(), Arc::new(PoolConfig::try_from(p).ok()?))))
            .collect();
        for t in &a.targets {
            if let Some(pool) = pools.get(&t.pool) {
                let _ = TargetSpec::from_proto(t, pool.clone());
            }
        }
    }
    if let Ok(pb::ScraperMessage { msg: Some(m) }) = pb::ScraperMessage::decode(data) {
        match m {
            pb::scraper_message::Msg::Hello(h) => {
                let _ = Hello::try_from(h);
            }
            pb::scraper_message::Msg::Status(s) => {
                let _ = reports(s);
            }
            pb::scraper_message::Msg::Goodbye(_) => {}
        }
    }
});
