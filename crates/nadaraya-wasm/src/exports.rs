//! The module's exports: plain `extern "C"` functions over one [`Page`] held by the module.
//!
//! JavaScript never writes into linear memory: it changes the page through these calls and reads
//! the results as `Float32Array`s at [`nw_buffer`] (length [`nw_buffer_len`]) and UTF-8 text at
//! [`nw_text`]. A status is `0` for success and `-1` for an error, whose message is then text
//! [`TEXT_ERROR`]. Every export is `#[unsafe(no_mangle)]` (the only unsafe here: the symbol
//! name must be unique, and every name starts with `nw_`); none holds an unsafe block.

use std::cell::RefCell;

use crate::{Buffer, Data, FEATURES, Page, SCENARIOS, Summary};

/// Text: the last error's message (empty after a success).
pub const TEXT_ERROR: u32 = 0;
/// Text: the scenario names, one a line, in the order of [`SCENARIOS`].
pub const TEXT_SCENARIOS: u32 = 1;
/// Text: the summary field names, comma-separated, in buffer order ([`Summary::NAMES`]).
pub const TEXT_SUMMARY: u32 = 2;
/// Text: the feature counts of the `m` slider, comma-separated ([`FEATURES`]).
pub const TEXT_FEATURES: u32 = 3;

#[derive(Debug, Default)]
struct State {
    page: Page,
    error: String,
    texts: [String; 3],
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        texts: [
            SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join("\n"),
            Summary::NAMES.join(","),
            FEATURES.map(|m| m.to_string()).join(","),
        ],
        ..State::default()
    });
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Runs a fallible page operation and turns it into a status, keeping the error's message.
fn status(f: impl FnOnce(&mut Page) -> Result<(), crate::Error>) -> i32 {
    with(|s| match f(&mut s.page) {
        Ok(()) => {
            s.error.clear();
            0
        }
        Err(e) => {
            s.error = e.to_string();
            -1
        }
    })
}

/// Applies scenario `index` of [`SCENARIOS`]; `-1` if there is none.
#[unsafe(no_mangle)]
pub extern "C" fn nw_scenario(index: u32) -> i32 {
    status(|p| {
        let s = SCENARIOS
            .get(index as usize)
            .ok_or(crate::Error::Parameter)?;
        p.apply(s);
        Ok(())
    })
}

/// Loads data set `0` sine, `1` clustered, `2` dense and fits the view; `-1` for another.
#[unsafe(no_mangle)]
pub extern "C" fn nw_load(data: u32) -> i32 {
    status(|p| {
        p.load(match data {
            0 => Data::Sine,
            1 => Data::Clustered,
            2 => Data::Dense,
            _ => return Err(crate::Error::Parameter),
        });
        Ok(())
    })
}

/// [`Page::set_h`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_set_h(h: f32) -> i32 {
    status(|p| p.set_h(h))
}

/// [`Page::set_tau`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_set_tau(tau: f32) -> i32 {
    status(|p| p.set_tau(tau))
}

/// [`Page::set_x_q`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_set_x_q(x_q: f32) -> i32 {
    status(|p| p.set_x_q(x_q))
}

/// [`Page::set_unit`] (`0` off, anything else on).
#[unsafe(no_mangle)]
pub extern "C" fn nw_set_unit(on: u32) -> i32 {
    status(|p| {
        p.set_unit(on != 0);
        Ok(())
    })
}

/// [`Page::set_feature_index`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_set_feature_index(index: u32) -> i32 {
    status(|p| p.set_feature_index(index as usize))
}

/// [`Page::set_point`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_set_point(i: u32, x: f32, y: f32) -> i32 {
    status(|p| p.set_point(i as usize, x, y))
}

/// [`Page::push`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_push(x: f32, y: f32) -> i32 {
    status(|p| p.push(x, y))
}

/// [`Page::remove`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_remove(i: u32) -> i32 {
    status(|p| p.remove(i as usize).map(|_| ()))
}

/// [`Page::compute`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_compute() -> i32 {
    status(Page::compute)
}

/// [`Page::compute_rf`].
#[unsafe(no_mangle)]
pub extern "C" fn nw_compute_rf() -> i32 {
    status(Page::compute_rf)
}

/// The address of buffer `id` (a [`Buffer`] number) in linear memory, `0` for an unknown id.
/// Valid until the next call that changes the page.
#[unsafe(no_mangle)]
pub extern "C" fn nw_buffer(id: u32) -> usize {
    with(|s| {
        Buffer::ALL
            .get(id as usize)
            .map_or(0, |&b| s.page.buffer(b).as_ptr() as usize)
    })
}

/// The length in `f32`s of buffer `id`, `0` for an unknown id.
#[unsafe(no_mangle)]
pub extern "C" fn nw_buffer_len(id: u32) -> usize {
    with(|s| {
        Buffer::ALL
            .get(id as usize)
            .map_or(0, |&b| s.page.buffer(b).len())
    })
}

fn text(s: &State, id: u32) -> &str {
    match id {
        TEXT_ERROR => &s.error,
        1..=3 => &s.texts[id as usize - 1],
        _ => "",
    }
}

/// The address of text `id` (`TEXT_*`), UTF-8; valid until the next call.
#[unsafe(no_mangle)]
pub extern "C" fn nw_text(id: u32) -> usize {
    with(|s| text(s, id).as_ptr() as usize)
}

/// The length in bytes of text `id`.
#[unsafe(no_mangle)]
pub extern "C" fn nw_text_len(id: u32) -> usize {
    with(|s| text(s, id).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_texts() {
        assert_eq!(nw_scenario(0), 0);
        assert_eq!(nw_compute(), 0);
        assert_eq!(nw_buffer_len(Buffer::AlphaGauss as u32), 12);
        assert_eq!(nw_buffer_len(99), 0);
        assert_eq!(nw_scenario(SCENARIOS.len() as u32), -1);
        assert_eq!(
            with(|s| text(s, TEXT_ERROR).to_owned()),
            "parameter out of range"
        );
        assert_eq!(nw_set_h(0.2), 0);
        assert_eq!(nw_text_len(TEXT_ERROR), 0);
        assert!(with(
            |s| text(s, TEXT_SCENARIOS).starts_with("default\nsmall-h\n")
        ));
        assert_eq!(nw_set_point(99, 0.0, 0.0), -1);
        assert_eq!(nw_push(f32::NAN, 1.0), -1);
        assert_eq!(nw_load(7), -1);
    }
}
