//! Integration tests: the real server and real Chromium against fixture pages on 127.0.0.1.
//! One test binary for everything, so that it links once.

mod support;

mod adspower;
mod cdp;
mod contexts;
mod drain;
mod errors;
mod events;
mod evidence;
mod fake_adspower;
mod fake_llm;
mod fill_inputs;
mod fleet;
mod flows;
mod forms;
mod guard;
mod isolation;
mod jurisdiction;
mod labels;
mod lifecycle;
mod live;
mod llm;
mod openapi;
mod profiles;
mod proxies;
mod readiness;
mod readme;
mod recording;
mod restart;
mod sandbox;
mod sessions;
mod submit_cases;
mod takeover;
mod tasks;
mod vnc;
mod webhooks;
