//! File inputs (hidden ones too) through `DOM.setFileInputFiles`; read back name and size.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::executor::{ELEMENT, READ_FILE};
use super::{Executor, FillError};
use crate::forms::Field;

impl Executor<'_> {
    pub(super) async fn file(
        &self,
        field: &Field,
        path: &std::path::Path,
        rng: &mut StdRng,
    ) -> Result<(Value, bool), FillError> {
        self.pause(rng).await;
        let args = json!({ "selector": field.selector });
        self.page.set_files(&ELEMENT.declaration(), &args, &[path.to_path_buf()]).await?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let size = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
        let shown = self.call("read file", READ_FILE, args).await?;
        let verified = shown.get("name").and_then(Value::as_str) == Some(name.as_str())
            && shown.get("size").and_then(Value::as_u64) == Some(size);
        Ok((json!(name), verified))
    }
}
