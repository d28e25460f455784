//! Attack traffic against the echo server while a legitimate association runs (inside the
//! VM: kernel SCTP): an INIT flood from many sources, blind ABORT and DATA with wrong
//! verification tags, and malformed chunk lengths, all crafted and sent raw. XDP must
//! drop them, charged to the right reasons, and the real association must not lose a
//! message. The server's INIT-ACKs leave by the TC egress program, which is how the
//! tags of the real association are learned (no learning window).

use std::time::{Duration, Instant};

use integration_tests::{
    echo_env::EchoEnv,
    raw::{mac_of, send_frames},
    require_kernel_sctp, Rng,
};
use sctp_common::{
    builder::{Chunk, Ip, SctpPacket},
    proto::chunk::ty,
};
use serde_json::Value;

const FLOOD_SOURCES: u8 = 200;
const INITS_PER_SOURCE: usize = 10;
const BLIND: u32 = 500;
const MALFORMED: usize = 200;
const GLOBAL_INIT_RATE: u64 = 50;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn to_server(src: [u8; 4], src_port: u16, vtag: u32, chunks: Vec<Chunk>, mac: [u8; 6]) -> Vec<u8> {
    let mut p = SctpPacket::new(Ip::V4 { src, dst: [198, 18, 0, 2] }, vtag, chunks);
    p.src_port = src_port;
    p.dst_port = 36412;
    let mut f = p.frame();
    f[..6].copy_from_slice(&mac);
    f
}

/// Tests that need root and kernel SCTP: run in the VM on every kernel.
mod vm {
    use super::*;

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn attacks_are_dropped_while_a_real_association_keeps_every_message() {
        require_kernel_sctp();
        let global = GLOBAL_INIT_RATE.to_string();
        let env = EchoEnv::start(
            "va",
            &[
                "--validate-vtag",
                "--vtag-learn",
                "0",
                "--init-rate",
                "5",
                "--global-init-rate",
                &global,
                "--deny-violations",
                "--malformed",
                "drop",
            ],
        );
        let mac = mac_of(&env.server, "es0");
        let mut rng = Rng(0xa77a_c4ed);
        let port = |rng: &mut Rng| 1024 + u16::try_from(rng.below(60000)).expect("below 60000");
        let mut flood = Vec::new();
        for s in 0..FLOOD_SOURCES {
            let src = [198, 18, 100 + s / 100, s % 100 + 1];
            for _ in 0..INITS_PER_SOURCE {
                let tag = rng.next_u32() | 1;
                flood.push(to_server(
                    src,
                    port(&mut rng),
                    0,
                    vec![Chunk::init(ty::INIT, tag, 65535, 10, 10, tag)],
                    mac,
                ));
            }
        }
        let client_ip = [198, 18, 0, 1];
        let mut blind = Vec::new();
        for i in 0..BLIND {
            let tag = rng.next_u32();
            let abort = Chunk::new(ty::ABORT, 0, vec![]);
            blind.push(to_server(client_ip, port(&mut rng), tag, vec![abort], mac));
            let data = Chunk::data(i, 0, 0, 18, 32);
            blind.push(to_server(client_ip, port(&mut rng), tag ^ 0x5555, vec![data], mac));
        }
        let malformed: Vec<Vec<u8>> = (0..MALFORMED)
            .map(|_| {
                // COOKIE-ECHO may come out of the blue: its length runs past the packet.
                let cookie = Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 16]).with_length(600);
                to_server(client_ip, port(&mut rng), rng.next_u32(), vec![cookie], mac)
            })
            .collect();

        // The real traffic: two associations, paced so they span the attack.
        let (ok, c, attack_secs) = std::thread::scope(|s| {
            let legit = s.spawn(|| {
                env.client(&[
                    "--associations",
                    "2",
                    "--messages",
                    "150",
                    "--rate",
                    "50",
                    "--window",
                    "4",
                    "--ppid",
                    "18,60",
                ])
            });
            // Let the associations come up before the flood takes the INIT budget.
            std::thread::sleep(Duration::from_secs(2));
            let started = Instant::now();
            send_frames(&env.client, "ec0", &flood);
            send_frames(&env.client, "ec0", &blind);
            send_frames(&env.client, "ec0", &malformed);
            let attack_secs = started.elapsed().as_secs_f64();
            let (ok, c) = legit.join().unwrap();
            (ok, c, attack_secs)
        });
        {
            assert!(ok, "the real association failed under attack: {c}");
            assert_eq!(n(&c["echoed"]), 300, "{c}");
            assert_eq!(n(&c["mismatches"]), 0, "{c}");

            let r = env.stop();
            assert_eq!(n(&r["echo"]["messages_in"]), 300);
            assert_eq!(n(&r["echo"]["messages_out"]), 300);
            for a in r["join"]["associations"].as_array().unwrap() {
                assert_eq!(a["delivery_ratio"].as_f64(), Some(1.0), "{a}");
                assert_eq!(n(&a["matched_messages"]), 150, "{a}");
            }
            let drops = &r["xdp"]["drops"];
            eprintln!("drops: {drops}; attack sent in {attack_secs:.2} s");
            assert_eq!(n(&drops["vtag_unknown"]), 2 * u64::from(BLIND), "blind ABORT and DATA");
            assert_eq!(n(&drops["malformed"]), MALFORMED as u64);
            let rated = n(&drops["init_rate_source"]) + n(&drops["init_rate_global"]);
            let sent = u64::from(FLOOD_SOURCES) * INITS_PER_SOURCE as u64;
            // At most the global burst plus its rate over the attack got through.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a rate over a few seconds: small and positive"
            )]
            let budget = GLOBAL_INIT_RATE + (GLOBAL_INIT_RATE as f64 * (attack_secs + 1.0)) as u64;
            assert!(rated + budget >= sent, "only {rated} of {sent} INITs dropped (budget {budget})");
            assert!(n(&r["xdp"]["packets"]["vtags_learned"]) >= 4, "tags of the real associations");
        }
    }
}
