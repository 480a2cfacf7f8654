//! The floor for bench/proxy.sh: a relay that does nothing but copy bytes between each
//! client and a server connection of its own (session pooling without a pool), on the same
//! runtime switchyard uses (tokio, one current-thread worker). No protocol parsing, no
//! transaction tracking, no statements, no metrics: what any tokio-based proxy costs
//! before it does a proxy's work. Authentication passes through to the server.
//!
//! usage: cargo run --release --example bare_relay -- LISTEN_ADDR SERVER_ADDR

use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, server] = &args[..] else {
        eprintln!("usage: bare_relay LISTEN_ADDR SERVER_ADDR");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve(listen.clone(), server.clone()));
}

async fn serve(listen: String, server: String) {
    let listener = TcpListener::bind(&listen).await.expect("bind LISTEN_ADDR");
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(client, &server).await {
                eprintln!("bare_relay: {e}");
            }
        });
    }
}

async fn relay(mut client: TcpStream, server: &str) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut upstream = TcpStream::connect(server).await?;
    upstream.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
