//! Needs kernel SCTP, so it runs in the VM (`cargo xtask test`); on a kernel without SCTP
//! it says so and skips. The XDP program, attached to both ends of a veth joining two
//! namespaces, must count a real association as the kernel sends it.

use std::{net::SocketAddr, time::Duration};

use integration_tests::{
    netns::{veth, Netns},
    require_kernel_sctp,
};
use sctp_common::{abi::Counter, proto::chunk::ty};
use sctp_user::{
    bpf::{LoadOptions, XdpSctp},
    sys::sctp::{Received, SctpSocket, SndInfo},
};

/// Tests that need root and kernel SCTP: run in the VM on every kernel.
mod vm {
    use super::*;

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn xdp_counts_a_real_association_between_namespaces() {
        require_kernel_sctp();
        let client_ns = Netns::new("sx-cli").unwrap();
        let server_ns = Netns::new("sx-srv").unwrap();
        veth(&client_ns, "sxc0", "198.18.0.1/24", &server_ns, "sxs0", "198.18.0.2/24").unwrap();
        let mut prog = XdpSctp::load(&LoadOptions::default()).unwrap();
        // Both ends, so both directions are seen (XDP sees ingress only).
        client_ns.run(|| prog.attach("sxc0", aya::programs::XdpMode::Default)).unwrap();
        server_ns.run(|| prog.attach("sxs0", aya::programs::XdpMode::Default)).unwrap();

        let server_addr: SocketAddr = "198.18.0.2:36412".parse().unwrap();
        let server = server_ns.run(|| {
            let s = SctpSocket::one_to_many(false).unwrap();
            s.recv_rcvinfo().unwrap();
            s.bindx(&[server_addr]).unwrap();
            s.listen(16).unwrap();
            s
        });
        let client = client_ns.run(|| SctpSocket::one_to_many(false).unwrap());
        for s in [&server, &client] {
            s.set_recv_timeout(Duration::from_secs(20)).unwrap();
        }
        client.send(b"hello", &SndInfo::default(), Some(server_addr)).unwrap();
        let mut buf = [0u8; 64];
        let Received::Data { len, info, .. } = server.recv(&mut buf).unwrap() else {
            panic!("no notification was asked for")
        };
        assert_eq!(&buf[..len], b"hello");
        server.send(&buf[..len], &SndInfo::reply_to(&info), None).unwrap();
        let Received::Data { len, .. } = client.recv(&mut buf).unwrap() else {
            panic!("no notification was asked for")
        };
        assert_eq!(&buf[..len], b"hello");
        drop(client); // graceful SHUTDOWN of the association

        // Wait for the shutdown handshake to cross the wire (slow under emulation) before the
        // server closes too: closing both at once may cross two SHUTDOWNs (RFC 9260 9.2).
        let mut snap = sctp_user::snapshot::Snapshot::take(&prog).unwrap();
        for _ in 0..100 {
            if snap.global.chunk_types[ty::SHUTDOWN_COMPLETE as usize] > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            snap = sctp_user::snapshot::Snapshot::take(&prog).unwrap();
        }
        drop(server);
        let g = &snap.global;
        for t in [
            ty::INIT,
            ty::INIT_ACK,
            ty::COOKIE_ECHO,
            ty::COOKIE_ACK,
            ty::SHUTDOWN,
            ty::SHUTDOWN_ACK,
            ty::SHUTDOWN_COMPLETE,
        ] {
            assert_eq!(g.chunk_types[t as usize], 1, "chunk type {t}: {g:?}");
        }
        assert!(g.chunk_types[ty::SACK as usize] >= 1, "SACK");
        assert_eq!(g.get(Counter::DataChunks), 2, "hello and its echo");
        assert_eq!(g.get(Counter::DataPayloadBytes), 10);
        assert_eq!(g.get(Counter::Malformed), 0);

        // INIT carries the client's tag: the server->client flow uses it as its vtag; INIT-ACK
        // carries the server's: the client->server flow uses it. That pairs the directions.
        let init = snap.flows.values().find(|f| f.init_chunk_type == u32::from(ty::INIT)).expect("INIT flow");
        let init_ack =
            snap.flows.values().find(|f| f.init_chunk_type == u32::from(ty::INIT_ACK)).expect("INIT-ACK flow");
        let to_client = snap.flows.iter().find(|(k, _)| k.vtag == init.init_tag).expect("server->client flow");
        let to_server = snap.flows.iter().find(|(k, _)| k.vtag == init_ack.init_tag).expect("client->server flow");
        assert_eq!((to_client.0.src_port, to_server.0.dst_port), (36412, 36412));
        assert_eq!(to_client.1.data_chunks + to_server.1.data_chunks, 2);
    }
}
