//! What a look at one resource in the engine or the proxy found: it is there, it is not there,
//! or the look failed. The third answer is not the second: a container inspect that got a 500,
//! a timeout, a locked swarm or a manager without a leader says nothing about the container, and
//! nothing may be removed, deleted or run (a hook) because of it.
//!
//! Every read of the engine and the proxy that can answer "not there" returns a [`Look`], never
//! an `Option` inside a `Result` that a caller could flatten: `.ok().flatten()` turned failed
//! looks into absences once, and prune tore down live previews for it.

/// What a look at one resource found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a look that failed must be handled as 'could not look', never as 'not there'"]
pub enum Look<T, E> {
    /// It is there, as seen.
    Found(T),
    /// It is definitely not there: a 404, or absent from a list that succeeded.
    Absent,
    /// The look failed: whether it is there is unknown.
    Unknown(E),
}

impl<T, E> Look<T, E> {
    /// From the `Result<Option<T>, E>` shape an API client answers in: `Ok(None)` is a definite
    /// absence, `Err` a failed look.
    pub fn from_result(r: Result<Option<T>, E>) -> Self {
        match r {
            Ok(Some(v)) => Self::Found(v),
            Ok(None) => Self::Absent,
            Err(e) => Self::Unknown(e),
        }
    }

    /// Back to `Result<Option<T>, E>`, for callers that propagate a failed look with `?` (a
    /// deploy step fails on it).
    ///
    /// # Errors
    /// The failed look's error.
    pub fn into_result(self) -> Result<Option<T>, E> {
        match self {
            Self::Found(v) => Ok(Some(v)),
            Self::Absent => Ok(None),
            Self::Unknown(e) => Err(e),
        }
    }

    /// The found value, by reference.
    pub fn as_ref(&self) -> Look<&T, &E> {
        match self {
            Self::Found(v) => Look::Found(v),
            Self::Absent => Look::Absent,
            Self::Unknown(e) => Look::Unknown(e),
        }
    }

    /// Maps the found value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Look<U, E> {
        match self {
            Self::Found(v) => Look::Found(f(v)),
            Self::Absent => Look::Absent,
            Self::Unknown(e) => Look::Unknown(e),
        }
    }

    /// Maps the error of a failed look.
    pub fn map_err<F>(self, f: impl FnOnce(E) -> F) -> Look<T, F> {
        match self {
            Self::Found(v) => Look::Found(v),
            Self::Absent => Look::Absent,
            Self::Unknown(e) => Look::Unknown(f(e)),
        }
    }

    /// Is it definitely not there?
    #[must_use]
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// Did the look fail?
    #[must_use]
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_unknown_and_only_none_is_absent() {
        assert_eq!(Look::<u8, &str>::from_result(Ok(Some(1))), Look::Found(1));
        assert_eq!(Look::<u8, &str>::from_result(Ok(None)), Look::Absent);
        assert_eq!(Look::<u8, &str>::from_result(Err("500")), Look::Unknown("500"));
        assert!(Look::<u8, &str>::from_result(Err("500")).into_result().is_err());
    }
}
