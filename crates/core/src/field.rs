//! Field errors: what was wrong with one input field, in words a person can act on.

/// One faulty input field. `field` is the path in the request
/// (`applicants[1].birth_date`); `code` is stable for machines; the messages
/// are for people, in Spanish (the default) and English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub es: &'static str,
    pub en: &'static str,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: &'static str,
        es: &'static str,
        en: &'static str,
    ) -> Self {
        Self {
            field: field.into(),
            code,
            es,
            en,
        }
    }
}

/// Every faulty field of one request, so that a person fixes them all at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Keeps the value if it parsed, records the error otherwise.
    pub fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.en)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}
