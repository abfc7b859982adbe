//! `casguard ranges update`: a current Microsoft 365 range file from the
//! answers of Microsoft's endpoints web service: saved to files (the
//! machines casguard runs on often cannot reach the Internet), or fetched
//! over HTTPS with `--fetch` where they can.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use exchange::endpoints;

use super::emit;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write the Microsoft 365 ranges (Exchange Online and AutoDetect) from the endpoints web service's answers.
    ///
    /// Where this machine reaches the Internet, `--fetch` asks the service itself. Else fetch
    /// the two answers elsewhere, for example:
    ///   id=$(uuidgen)
    ///   curl -o version.json "https://endpoints.office.com/version/Worldwide?ClientRequestId=$id"
    ///   curl -o endpoints.json "https://endpoints.office.com/endpoints/Worldwide?ServiceAreas=Exchange&ClientRequestId=$id"
    /// then `casguard ranges update --endpoints endpoints.json --endpoints-version version.json --out m365.txt`
    /// and give `--ranges m365.txt` to audit, simulate, export, watch and the gateway: it replaces
    /// the built-in ranges. Microsoft asks clients to check the version at most once an hour.
    // Verbatim, or clap runs the three shell lines together into one that cannot be pasted.
    #[command(verbatim_doc_comment)]
    Update(UpdateArgs),
}

#[derive(clap::Args, Debug)]
// The answers saved, or --fetch: with neither, clap names both ways.
#[group(skip)]
#[command(group(clap::ArgGroup::new("answers").required(true).args(["endpoints", "fetch"])))]
pub struct UpdateArgs {
    /// The endpoints method's answer (`/endpoints/Worldwide?ServiceAreas=Exchange`).
    #[arg(long, value_name = "FILE", requires = "endpoints_version", conflicts_with = "fetch")]
    pub endpoints: Option<PathBuf>,
    /// The version method's answer (`/version/Worldwide`), or the version itself (YYYYMMDDNN).
    #[arg(long, value_name = "FILE|VERSION", requires = "endpoints", conflicts_with = "fetch")]
    pub endpoints_version: Option<String>,
    /// Ask the endpoints web service over HTTPS for both answers instead.
    #[arg(long)]
    pub fetch: bool,
    /// The service's address, for --fetch.
    #[arg(long, value_name = "URL", default_value = "https://endpoints.office.com", requires = "fetch")]
    pub service: String,
    /// Trust only the CA certificates in this PEM file for --fetch (default: the system's and
    /// Mozilla's roots); for a TLS-inspecting proxy's CA.
    #[arg(long, value_name = "FILE", requires = "fetch")]
    pub ca: Option<PathBuf>,
    /// The instance whose version to read from an answer listing several.
    #[arg(long, default_value = "Worldwide", value_name = "NAME")]
    pub instance: String,
    /// Where to write the range file (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Update(args) = command;
    let read =
        |path: &PathBuf| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    let (version, endpoints_text, origin) = match (&args.endpoints, &args.endpoints_version) {
        (Some(endpoints), Some(given)) => {
            let version = if endpoints::version_time(given).is_some() {
                given.clone()
            } else {
                let path = PathBuf::from(given);
                if !path.exists() {
                    // Not "cannot read 2026133100: No such file": a mistyped version is no file either.
                    bail!("--endpoints-version {given}: neither a version (YYYYMMDDNN, such as 2026120400) nor a file");
                }
                endpoints::latest_version(&read(&path)?, &args.instance, &path.display().to_string())?
            };
            (version, read(endpoints)?, endpoints.display().to_string())
        }
        _ => {
            let service = args.service.trim_end_matches('/');
            let id = client_request_id();
            let version_url = format!("{service}/version/{}?ClientRequestId={id}", args.instance);
            let endpoints_url =
                format!("{service}/endpoints/{}?ServiceAreas=Exchange&ClientRequestId={id}", args.instance);
            let answers = fetch(&[&version_url, &endpoints_url], args.ca.as_deref())?;
            let version = endpoints::latest_version(&answers[0], &args.instance, &version_url)?;
            let [_, endpoints_text] = answers;
            (version, endpoints_text, endpoints_url)
        }
    };
    let sets = endpoints::exchange_sets(&endpoints_text, &origin)?;
    let file_name = match &args.endpoints {
        Some(path) => path.file_name().map_or(origin.clone(), |n| n.to_string_lossy().into_owned()),
        None => origin.clone(),
    };
    let text = endpoints::ranges_file(&version, &sets, &file_name)?;
    emit(args.out.as_ref(), &text)?;
    if let Some(out) = &args.out {
        let addresses = text.lines().filter(|l| l.ends_with(" microsoft365")).count();
        eprintln!("wrote {} ({addresses} ranges, endpoints version {version})", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A GUID for the service's `ClientRequestId` (it asks for one per client;
/// nothing depends on its randomness).
fn client_request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let a = hasher.finish();
    hasher.write_u64(a);
    let b = hasher.finish();
    let v = (u128::from(a) << 64 | u128::from(b)) & !(0xF000 << 64) & !(0xC << 60) | (0x4000 << 64) | (0x8 << 60);
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Answers above this are refused: the Exchange answer is about 10 KB.
const MAX_ANSWER: usize = 16 << 20;

/// GET each `https://` URL, in order, on one runtime; the bodies as text.
fn fetch<const N: usize>(urls: &[&str; N], ca: Option<&Path>) -> anyhow::Result<[String; N]> {
    let tls = tokio_rustls::TlsConnector::from(gateway::client_config(ca)?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (url, body) in urls.iter().zip(&mut out) {
        // The timer is made inside the runtime, which it needs.
        let got = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(60), get(&tls, url)).await });
        *body = got.map_err(|_| anyhow::anyhow!("{url}: no answer within 60 s"))?.with_context(|| url.to_string())?;
    }
    Ok(out)
}

async fn get(tls: &tokio_rustls::TlsConnector, url: &str) -> anyhow::Result<String> {
    use http_body_util::BodyExt;
    let uri: hyper::Uri = url.parse()?;
    if uri.scheme_str() != Some("https") {
        bail!("only https:// is fetched");
    }
    let host = uri.host().context("no host")?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let name = rustls_pki_types::ServerName::try_from(host.clone())?;
    let stream = tls.connect(name, tcp).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, uri.authority().map_or(host.as_str(), |a| a.as_str()))
        .header(hyper::header::USER_AGENT, concat!("casguard/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::ACCEPT, "application/json")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("answered {}", response.status());
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).context("the answer is not UTF-8")
}
