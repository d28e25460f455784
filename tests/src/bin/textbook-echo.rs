//! The benchmark's reference: a one-to-many SCTP echo server written the textbook way (the
//! seed's walk-through): one thread, blocking recvmsg, sendmsg back on the same stream with
//! the same PPID. No queues, no notifications, no reassembly beyond the buffer.

use std::net::SocketAddr;

use sctp_user::sys::sctp::{Received, SctpSocket, SndInfo};

fn main() {
    let addr: SocketAddr = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        eprintln!("usage: textbook-echo ADDR:PORT");
        std::process::exit(2)
    });
    let sock = SctpSocket::one_to_many(addr.is_ipv6()).unwrap_or_else(|e| {
        eprintln!("textbook-echo: {e}");
        std::process::exit(1)
    });
    sock.recv_rcvinfo().unwrap();
    sock.set_streams(64, 64).unwrap();
    sock.bindx(&[addr]).unwrap();
    sock.listen(128).unwrap();
    println!("textbook-echo listening on {addr}");
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv(&mut buf) {
            Ok(Received::Data { len, info, .. }) => {
                if let Err(e) = sock.send(&buf[..len], &SndInfo::reply_to(&info), None) {
                    eprintln!("textbook-echo: sendmsg: {e}");
                }
            }
            Ok(Received::Notification(_)) => {}
            Err(e) => eprintln!("textbook-echo: recvmsg: {e}"),
        }
    }
}
