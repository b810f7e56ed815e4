//! The browser shell of quicproquo.
//!
//! `qpq-client` compiled to WebAssembly with what a browser provides: IndexedDB for state
//! (each engine step's changes in one transaction, values encrypted with a data key that a
//! non-extractable WebCrypto key wraps), a WebSocket transport to the gateway, timers and
//! task spawning from the JavaScript event loop — and a JavaScript API ([`api::QpqClient`])
//! whose TypeScript declarations land in `pkg/`.
//!
//! This is the only crate that touches wasm-bindgen, web-sys, js-sys or rexie. It holds no
//! messaging logic of its own and renders nothing: the UI in `www/` does.

#[cfg(target_arch = "wasm32")]
mod api;
pub mod base64url;
#[cfg(target_arch = "wasm32")]
mod error;
#[cfg(target_arch = "wasm32")]
mod platform;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
mod transport;
pub mod views;

#[cfg(target_arch = "wasm32")]
pub use api::QpqClient;
