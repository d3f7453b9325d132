//! Integration tests: the real server and real Chromium against fixture pages on 127.0.0.1.
//! One test binary for everything, so that it links once.

mod support;

mod cdp;
mod errors;
mod lifecycle;
mod openapi;
mod readme;
mod sessions;
mod vnc;
