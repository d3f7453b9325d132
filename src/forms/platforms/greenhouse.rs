//! Greenhouse: new React boards (ids such as `first_name`, `question_<n>`, react-select
//! comboboxes) and legacy boards (`job_application[...]` names, `#submit_app`).

use super::ident;
use crate::forms::Field;

pub fn key_for(field: &Field) -> Option<&'static str> {
    let (name, id) = ident(field);
    let key = name.strip_prefix("job_application[").and_then(|n| n.strip_suffix(']')).unwrap_or(id);
    Some(match key {
        "first_name" => "first_name",
        "last_name" => "last_name",
        "preferred_name" => "preferred_name",
        "email" => "email",
        "phone" => "phone",
        "country" => "country",
        "location" | "candidate-location" | "auto_complete_input" => "location",
        "resume" | "resume_text" => "resume",
        "cover_letter" | "cover_letter_text" => "cover_letter",
        _ => return None,
    })
}
