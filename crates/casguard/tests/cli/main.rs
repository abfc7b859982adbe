//! `casguard` run as an admin runs it, one module per subcommand. One test
//! binary (as ripgrep does): one link of the binary under test, and the helpers
//! in `util` written once.

mod util;

mod apart;
mod attacks;
mod audit;
mod baseline;
mod clients;
mod devices;
mod emit;
mod export;
mod gateway;
mod html;
mod httpproxy;
mod import;
mod input;
mod posture;
mod ranges;
mod real;
mod replay;
mod simulate;
mod usage;
mod watch;
