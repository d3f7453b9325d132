//! Lever: `li.application-question` cards, one full-name field (`name`), `org` for the current
//! company, `urls[...]` links, a location typeahead, and `cards[<uuid>][fieldN]` questions.

use super::ident;
use crate::forms::Field;

pub fn key_for(field: &Field) -> Option<&'static str> {
    let (name, _) = ident(field);
    Some(match name {
        "name" => "full_name",
        "email" => "email",
        "phone" => "phone",
        "location" => "location",
        "org" => "current_company",
        "urls[LinkedIn]" => "linkedin_url",
        "urls[GitHub]" => "github_url",
        "urls[Portfolio]" => "website_url",
        "urls[Twitter]" => "twitter_url",
        "urls[Other]" => "other_url",
        "resume" => "resume",
        "comments" => "cover_letter",
        _ => return None,
    })
}
