//! The `llm` and `auto` engines: one chat call per page to an OpenAI-compatible API
//! (`async-openai`; OpenAI, Azure's v1 endpoint, llama.cpp, vLLM, …) with a strict JSON-schema
//! answer that maps field numbers to applicant key names or questions; the worker copies the
//! values (see `prompt`). Accepted mappings are cached per form (`cache`). A slow, failing or
//! nonsense-answering model leaves the rules' suggestions in place, with a warning saying so.
//!
//! `llm`: the model answers every askable field; the rules' suggestions stay where it has none.
//! `auto`: the rules first; the model only for required fields the rules left open (every open
//! field on a `generic` page).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, ResponseFormat, ResponseFormatJsonSchema,
};
use async_trait::async_trait;
use rand::RngCore;
use serde::Deserialize;

use super::cache::{self, MappingCache};
use super::prompt::{self, Mapping, Resolved};
use super::rules::RulesEngine;
use super::{Applicant, Field, FormEngine, Noted, PageContext, Platform, Suggestion};

/// At most this many free-text answers are generated per page.
const MAX_GENERATED: usize = 3;

/// Where the model is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub base_url: url::Url,
    pub api_key: Option<String>,
    pub model: String,
    /// For one page's mapping call, retries included.
    pub timeout: Duration,
}

/// Why a model call gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the model endpoint failed: {0}")]
    Api(String),
    #[error("the model refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Malformed(String),
}

/// The LLM engine (also the model side of `auto`).
pub struct LlmEngine {
    client: Client<OpenAIConfig>,
    model: String,
    timeout: Duration,
    cache: Option<MappingCache>,
}

/// The parts of a chat completion the engine reads; looser than async-openai's own type so
/// that local servers' answers parse too.
#[derive(Debug, Deserialize)]
struct ChatReply {
    #[serde(default)]
    choices: Vec<ReplyChoice>,
    usage: Option<ReplyUsage>,
}

#[derive(Debug, Deserialize)]
struct ReplyChoice {
    message: ReplyMessage,
}

#[derive(Debug, Deserialize)]
struct ReplyMessage {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReplyUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl LlmEngine {
    /// A client for `settings`; `cache` keeps accepted mappings across calls.
    pub fn new(settings: &LlmSettings, cache: Option<MappingCache>) -> Self {
        let base = settings.base_url.as_str().trim_end_matches('/').to_string();
        let key = settings.api_key.clone().unwrap_or_default();
        let mut config = OpenAIConfig::new().with_api_base(base).with_api_key(key.clone());
        if settings.base_url.host_str().is_some_and(|h| h.ends_with(".azure.com"))
            && let Ok(with_header) = config.clone().with_header("api-key", key.as_str())
        {
            config = with_header;
        }
        Self { client: Client::with_config(config), model: settings.model.clone(), timeout: settings.timeout, cache }
    }

    /// Asks the model about `wanted` (indices into `page.fields`); returns suggestions by index
    /// and warnings about dropped answers.
    async fn map(
        &self,
        page: &PageContext<'_>,
        wanted: &[usize],
        applicant: &Applicant,
    ) -> Result<(Vec<(usize, Suggestion)>, Vec<String>), LlmError> {
        let fields: Vec<&Field> = wanted.iter().map(|&i| &page.fields[i]).collect();
        let key = cache::form_key(&self.model, page.platform, &fields, applicant);
        if let Some(mappings) = self.cached(&key).await
            && let Some(replayed) = replay(&mappings, &fields, applicant)
        {
            metrics::counter!("bw_llm_requests_total", "outcome" => "cache_hit").increment(1);
            return Ok((self.finish(page, wanted, &fields, replayed, applicant).await, Vec::new()));
        }
        let mut fence = [0u8; 6];
        rand::rng().fill_bytes(&mut fence);
        let fence: String = fence.iter().map(|b| format!("{b:02x}")).collect();
        let user = prompt::user_message(page, &fields, applicant, &fence);
        let format = ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: Some("Which applicant fact answers each form field".into()),
                name: "field_mapping".into(),
                schema: prompt::schema(),
                strict: Some(true),
            },
        };
        let request = self.request(prompt::SYSTEM, user, Some(format));
        let content = self.chat(request, "mapping").await?;
        let (mappings, warnings) = prompt::validate(&content, &fields, applicant).map_err(|e| {
            metrics::counter!("bw_llm_answers_rejected_total").increment(1);
            LlmError::Malformed(e)
        })?;
        // Only a clean answer is kept: after a dropped entry the model is asked again next time.
        if let Some(cache) = self.cache.as_ref().filter(|_| warnings.is_empty())
            && let Err(e) = cache.put(&key, &mappings).await
        {
            tracing::warn!(error = %e, "llm mapping not cached");
        }
        let resolved = mappings
            .iter()
            .filter_map(|m| prompt::resolve(m, fields[m.field - 1], applicant).ok().map(|r| (m.field - 1, r)))
            .collect();
        Ok((self.finish(page, wanted, &fields, resolved, applicant).await, warnings))
    }

    async fn cached(&self, key: &str) -> Option<Vec<Mapping>> {
        let cache = self.cache.as_ref()?;
        cache.get(key).await.map_err(|e| tracing::warn!(error = %e, "llm cache unreadable")).ok().flatten()
    }

    /// Turns resolved mappings (by position in `fields`) into suggestions by page index,
    /// generating free text where the caller allowed it.
    async fn finish(
        &self,
        page: &PageContext<'_>,
        wanted: &[usize],
        fields: &[&Field],
        resolved: Vec<(usize, Resolved)>,
        applicant: &Applicant,
    ) -> Vec<(usize, Suggestion)> {
        let mut out = Vec::new();
        let mut generated = 0;
        for (pos, r) in resolved {
            match r {
                Resolved::Value(s) => out.push((wanted[pos], s)),
                Resolved::Generate if generated < MAX_GENERATED => {
                    generated += 1;
                    let job = page.heading.unwrap_or(page.title);
                    let user = prompt::generate_message(&fields[pos].label, job, applicant);
                    match self.chat(self.request(prompt::GENERATE_SYSTEM, user, None), "generation").await {
                        Ok(text) => out.extend(prompt::generated(fields[pos], &text).map(|s| (wanted[pos], s))),
                        Err(e) => tracing::warn!(error = %e, "no generated text"),
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn request(&self, system: &str, user: String, format: Option<ResponseFormat>) -> CreateChatCompletionRequest {
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: vec![
                ChatCompletionRequestMessage::from(ChatCompletionRequestSystemMessage::from(system)),
                ChatCompletionRequestMessage::from(ChatCompletionRequestUserMessage::from(user)),
            ],
            response_format: format,
            ..Default::default()
        }
    }

    /// One chat completion (async-openai retries 429/5xx/connection errors with backoff),
    /// bounded by the timeout; records latency, tokens and the outcome.
    async fn chat(&self, request: CreateChatCompletionRequest, what: &'static str) -> Result<String, LlmError> {
        let started = Instant::now();
        let chat = self.client.chat();
        let call = chat.create_byot::<_, ChatReply>(request);
        let result = tokio::time::timeout(self.timeout, call).await;
        metrics::histogram!("bw_llm_request_seconds", "call" => what).record(started.elapsed().as_secs_f64());
        let outcome = |o: &'static str| metrics::counter!("bw_llm_requests_total", "outcome" => o).increment(1);
        let reply = match result {
            Err(_) => {
                outcome("timeout");
                return Err(LlmError::Timeout(self.timeout));
            }
            Ok(Err(e)) => {
                outcome("error");
                return Err(LlmError::Api(describe(&e)));
            }
            Ok(Ok(reply)) => reply,
        };
        if let Some(usage) = &reply.usage {
            metrics::counter!("bw_llm_tokens_total", "kind" => "prompt").increment(usage.prompt_tokens);
            metrics::counter!("bw_llm_tokens_total", "kind" => "completion").increment(usage.completion_tokens);
        }
        let message = reply.choices.into_iter().next().map(|c| c.message);
        match message {
            Some(ReplyMessage { refusal: Some(r), .. }) if !r.trim().is_empty() => {
                outcome("refused");
                Err(LlmError::Refused(short(&r)))
            }
            Some(ReplyMessage { content: Some(c), .. }) if !c.trim().is_empty() => {
                outcome("ok");
                Ok(c)
            }
            _ => {
                outcome("empty");
                Err(LlmError::Malformed("the model's answer was empty".into()))
            }
        }
    }

    /// The model's suggestions over a rules baseline: `wanted` picks the fields to ask about.
    async fn overlay(
        &self,
        page: &PageContext<'_>,
        applicant: &Applicant,
        wanted: impl Fn(&Field, Option<&Suggestion>) -> bool,
    ) -> Noted {
        let mut suggestions = RulesEngine.suggest(page, applicant).await;
        for s in suggestions.iter_mut().flatten() {
            s.engine = Some("rules".into());
        }
        let asked: Vec<usize> = (0..page.fields.len())
            .filter(|&i| prompt::askable(&page.fields[i]) && wanted(&page.fields[i], suggestions[i].as_ref()))
            .collect();
        let has_facts = !prompt::key_names(applicant).is_empty() || !prompt::questions(applicant).is_empty();
        if asked.is_empty() || !(has_facts || applicant.allow_generated_text) {
            return Noted { suggestions, warnings: Vec::new() };
        }
        match self.map(page, &asked, applicant).await {
            Ok((found, warnings)) => {
                for (i, s) in found {
                    suggestions[i] = Some(s);
                }
                Noted { suggestions, warnings }
            }
            Err(e) => {
                tracing::warn!(error = %e, "llm engine fell back to the rules");
                let warning = format!("llm: {e}; the rules' suggestions stand");
                Noted { suggestions, warnings: vec![warning] }
            }
        }
    }
}

/// The cached mappings applied again, or none when one no longer fits (the model is asked anew).
fn replay(mappings: &[Mapping], fields: &[&Field], applicant: &Applicant) -> Option<Vec<(usize, Resolved)>> {
    mappings
        .iter()
        .map(|m| {
            let field = fields.get(m.field.checked_sub(1)?)?;
            match prompt::resolve(m, field, applicant) {
                Ok(Resolved::Nothing) | Err(_) => None,
                Ok(r) => Some((m.field - 1, r)),
            }
        })
        .collect()
}

fn describe(e: &OpenAIError) -> String {
    match e {
        OpenAIError::ApiError(api) => format!("HTTP {}: {}", api.status_code.as_u16(), short(&api.api_error.message)),
        OpenAIError::JSONDeserialize(err, _) => format!("unreadable response ({err})"),
        OpenAIError::Reqwest(err) => format!("request failed ({})", short(&err.to_string())),
        other => short(&other.to_string()),
    }
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[async_trait]
impl FormEngine for LlmEngine {
    fn name(&self) -> &'static str {
        "llm"
    }

    async fn suggest(&self, page: &PageContext<'_>, applicant: &Applicant) -> Vec<Option<Suggestion>> {
        self.suggest_noted(page, applicant).await.suggestions
    }

    async fn suggest_noted(&self, page: &PageContext<'_>, applicant: &Applicant) -> Noted {
        self.overlay(page, applicant, |_, _| true).await
    }
}

/// Rules first; the model for required fields the rules left open (all open fields on an
/// unknown platform).
pub struct AutoEngine {
    pub llm: Arc<LlmEngine>,
}

#[async_trait]
impl FormEngine for AutoEngine {
    fn name(&self) -> &'static str {
        "auto"
    }

    async fn suggest(&self, page: &PageContext<'_>, applicant: &Applicant) -> Vec<Option<Suggestion>> {
        self.suggest_noted(page, applicant).await.suggestions
    }

    async fn suggest_noted(&self, page: &PageContext<'_>, applicant: &Applicant) -> Noted {
        let generic = page.platform == Platform::Generic;
        self.llm.overlay(page, applicant, |f, rules| rules.is_none() && (f.required || generic)).await
    }
}
