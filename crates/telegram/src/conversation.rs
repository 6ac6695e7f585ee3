//! `/crear`: a guided conversation kind → title → priority → location → confirmation, stored
//! in PostgreSQL after every step (it survives a restart and any instance continues it) and
//! forgotten after [`CONVERSATION_LIFETIME`] of silence. The task is created by the same use
//! case as `POST /api/v1/tasks`, as the linked user.

use gad_domain::tasks::geo::GeoPoint;
use gad_domain::tasks::input::{Schedule, TaskInput, Title};
use gad_domain::tasks::task::{Priority, TaskError, TaskKind, may_manage_tasks};
use gad_domain::tasks::use_cases::create_task;
use gad_domain::telegram::CONVERSATION_LIFETIME;
use serde::{Deserialize, Serialize};

use crate::bot::{Failure, Session};
use crate::render::{kind_label, priority_label};
use crate::text::escape;
use crate::types::{Button, InlineKeyboard};

/// What the bot answers at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub keyboard: Option<InlineKeyboard>,
}

impl Reply {
    fn plain(text: impl Into<String>) -> Self {
        Self { text: text.into(), keyboard: None }
    }
}

/// The draft so far, by the step that is waiting for an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Draft {
    Kind,
    Title { kind: TaskKind },
    Priority { kind: TaskKind, title: String },
    Location { kind: TaskKind, title: String, priority: Priority },
    Confirm { kind: TaskKind, title: String, priority: Priority, location: Option<(f64, f64)> },
}

/// A button of the conversation: `c:k:<kind>`, `c:p:<priority>`, `c:l` (no location), `c:ok`,
/// `c:no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    Kind(TaskKind),
    Priority(Priority),
    NoLocation,
    Confirm,
    Abort,
}

impl Press {
    pub fn decode(data: &str) -> Option<Self> {
        let rest = data.strip_prefix("c:")?;
        match rest {
            "l" => Some(Self::NoLocation),
            "ok" => Some(Self::Confirm),
            "no" => Some(Self::Abort),
            _ => {
                if let Some(kind) = rest.strip_prefix("k:") {
                    creatable_kind(kind).map(Self::Kind)
                } else {
                    rest.strip_prefix("p:")?.parse().ok().map(Self::Priority)
                }
            }
        }
    }
}

/// Emergencies are dispatched (`POST /api/v1/tasks/emergency`), not drafted in a chat.
fn creatable_kind(raw: &str) -> Option<TaskKind> {
    raw.parse().ok().filter(|kind| *kind != TaskKind::Emergency)
}

fn kind_by_name(text: &str) -> Option<TaskKind> {
    let text = text.trim().to_lowercase();
    TaskKind::ALL
        .iter()
        .copied()
        .filter(|kind| *kind != TaskKind::Emergency)
        .find(|kind| kind.as_str() == text || kind_label(*kind).to_lowercase() == text)
}

fn priority_by_name(text: &str) -> Option<Priority> {
    let text = text.trim().to_lowercase();
    Priority::ALL
        .iter()
        .copied()
        .find(|priority| priority.as_str() == text || priority_label(*priority).to_lowercase() == text)
}

fn keyboard(buttons: Vec<(String, String)>, per_row: usize) -> Option<InlineKeyboard> {
    let buttons: Vec<Button> = buttons.into_iter().filter_map(|(text, data)| Button::new(&text, data)).collect();
    Some(buttons.chunks(per_row).map(<[Button]>::to_vec).collect())
}

/// The question of each step.
fn prompt(draft: &Draft) -> Reply {
    match draft {
        Draft::Kind => Reply {
            text: "<b>Nueva tarea</b> (1/5)\n¿De qué tipo es? (/cancelar para abandonar)".into(),
            keyboard: keyboard(
                TaskKind::ALL
                    .iter()
                    .filter(|kind| **kind != TaskKind::Emergency)
                    .map(|kind| (kind_label(*kind).to_owned(), format!("c:k:{}", kind.as_str())))
                    .collect(),
                2,
            ),
        },
        Draft::Title { kind } => Reply::plain(format!(
            "<b>Nueva tarea</b> (2/5)\nTipo: {}\nEscribe el título (de 3 a 200 caracteres).",
            kind_label(*kind)
        )),
        Draft::Priority { title, .. } => Reply {
            text: format!("<b>Nueva tarea</b> (3/5)\nTítulo: {}\n¿Qué prioridad tiene?", escape(title)),
            keyboard: keyboard(
                Priority::ALL
                    .iter()
                    .map(|priority| (priority_label(*priority).to_owned(), format!("c:p:{}", priority.as_str())))
                    .collect(),
                3,
            ),
        },
        Draft::Location { .. } => Reply {
            text:
                "<b>Nueva tarea</b> (4/5)\nComparte la ubicación de la tarea (📎 → Ubicación) o pulsa «Sin ubicación»."
                    .into(),
            keyboard: keyboard(vec![("Sin ubicación".into(), "c:l".into())], 1),
        },
        Draft::Confirm { kind, title, priority, location } => Reply {
            text: format!(
                "<b>Nueva tarea</b> (5/5)\nTipo: {}\nTítulo: {}\nPrioridad: {}\nUbicación: {}\n¿La creo?",
                kind_label(*kind),
                escape(title),
                priority_label(*priority),
                location.map_or_else(|| "sin ubicación".to_owned(), |(lat, lng)| format!("{lat:.5}, {lng:.5}")),
            ),
            keyboard: keyboard(vec![("✅ Crear".into(), "c:ok".into()), ("✖️ Cancelar".into(), "c:no".into())], 2),
        },
    }
}

/// The chat's conversation, if one is running.
enum Loaded {
    None,
    Expired,
    Draft(Draft),
}

async fn load(session: &Session<'_>) -> Result<Loaded, Failure> {
    let store = &*session.ports().bookkeeping;
    let Some(stored) = store.conversation(session.chat, CONVERSATION_LIFETIME).await? else {
        return Ok(Loaded::None);
    };
    let expired = stored.expired;
    let draft = serde_json::from_str::<Draft>(&stored.state).ok();
    match draft {
        Some(draft) if stored.user_id == session.user.actor.id && !expired => Ok(Loaded::Draft(draft)),
        _ => {
            store.end_conversation(session.chat).await?;
            Ok(Loaded::Expired)
        }
    }
}

async fn save(session: &Session<'_>, draft: &Draft) -> Result<Reply, Failure> {
    let state = serde_json::to_string(draft)
        .map_err(|error| Failure::Store(gad_domain::error::StoreError::unexpected(error)))?;
    session.ports().bookkeeping.save_conversation(session.chat, session.user.actor.id, &state).await?;
    Ok(prompt(draft))
}

fn expired() -> Reply {
    Reply::plain("La conversación de /crear caducó por inactividad. Empieza de nuevo con /crear.")
}

/// `/crear`: starts (or restarts) the draft, for those who may create tasks.
pub(crate) async fn start(session: &Session<'_>) -> Result<Reply, Failure> {
    if !may_manage_tasks(session.user.actor) {
        return Ok(Reply::plain("Solo operadores, supervisores y administradores pueden crear tareas."));
    }
    save(session, &Draft::Kind).await
}

/// A text message: the answer to the current step, or `None` outside a conversation.
pub(crate) async fn answer_text(session: &Session<'_>, text: &str) -> Result<Option<Reply>, Failure> {
    let draft = match load(session).await? {
        Loaded::None => return Ok(None),
        Loaded::Expired => return Ok(Some(expired())),
        Loaded::Draft(draft) => draft,
    };
    let next =
        match &draft {
            Draft::Kind => kind_by_name(text).map(|kind| Draft::Title { kind }),
            Draft::Title { kind } => match Title::parse(text) {
                Ok(title) => Some(Draft::Priority { kind: *kind, title: title.as_str().to_owned() }),
                Err(_) => {
                    return Ok(Some(Reply::plain(
                        "El título debe tener entre 3 y 200 caracteres. Escríbelo de nuevo.",
                    )));
                }
            },
            Draft::Priority { kind, title } => {
                priority_by_name(text).map(|priority| Draft::Location { kind: *kind, title: title.clone(), priority })
            }
            Draft::Location { kind, title, priority } => {
                matches!(text.trim().to_lowercase().as_str(), "omitir" | "sin ubicación" | "no")
                    .then(|| Draft::Confirm { kind: *kind, title: title.clone(), priority: *priority, location: None })
            }
            Draft::Confirm { .. } => match text.trim().to_lowercase().as_str() {
                "sí" | "si" | "crear" => return finish(session, draft).await.map(Some),
                "no" => return abort(session).await.map(Some),
                _ => None,
            },
        };
    Ok(Some(match next {
        Some(next) => save(session, &next).await?,
        // Not an answer to this step: ask again.
        None => prompt(&draft),
    }))
}

/// A shared location: the task's place at the location step, else `None` (it is the officer's
/// position).
pub(crate) async fn answer_location(session: &Session<'_>, lat: f64, lng: f64) -> Result<Option<Reply>, Failure> {
    let Loaded::Draft(Draft::Location { kind, title, priority }) = load(session).await? else {
        return Ok(None);
    };
    if GeoPoint::new(lat, lng).is_err() {
        return Ok(Some(Reply::plain("Esa ubicación no es válida. Comparte otra o pulsa «Sin ubicación».")));
    }
    save(session, &Draft::Confirm { kind, title, priority, location: Some((lat, lng)) }).await.map(Some)
}

/// A conversation button; `None` when no conversation is running (a stale button).
pub(crate) async fn answer_press(session: &Session<'_>, press: Press) -> Result<Option<Reply>, Failure> {
    let draft = match load(session).await? {
        Loaded::None => return Ok(None),
        Loaded::Expired => return Ok(Some(expired())),
        Loaded::Draft(draft) => draft,
    };
    let next = match (&draft, press) {
        (_, Press::Abort) => return abort(session).await.map(Some),
        (Draft::Kind, Press::Kind(kind)) => Draft::Title { kind },
        (Draft::Priority { kind, title }, Press::Priority(priority)) => {
            Draft::Location { kind: *kind, title: title.clone(), priority }
        }
        (Draft::Location { kind, title, priority }, Press::NoLocation) => {
            Draft::Confirm { kind: *kind, title: title.clone(), priority: *priority, location: None }
        }
        (Draft::Confirm { .. }, Press::Confirm) => return finish(session, draft).await.map(Some),
        // A button of an earlier step: repeat the current question.
        _ => return Ok(Some(prompt(&draft))),
    };
    save(session, &next).await.map(Some)
}

async fn abort(session: &Session<'_>) -> Result<Reply, Failure> {
    session.ports().bookkeeping.end_conversation(session.chat).await?;
    Ok(Reply::plain("Conversación cancelada. No se ha creado nada."))
}

/// Creates the task. The conversation ends first, so that a repeated confirmation cannot create
/// a second task; it is restored if the creation could not be stored.
async fn finish(session: &Session<'_>, draft: Draft) -> Result<Reply, Failure> {
    let Draft::Confirm { kind, title, priority, location } = draft.clone() else {
        return Ok(prompt(&draft));
    };
    let ports = session.ports();
    if !ports.bookkeeping.end_conversation(session.chat).await? {
        return Ok(Reply::plain("Esa conversación ya terminó."));
    }
    let (Ok(title), Ok(location)) =
        (Title::parse(&title), location.map(|(lat, lng)| GeoPoint::new(lat, lng)).transpose())
    else {
        return Ok(Reply::plain("El borrador no era válido. Empieza de nuevo con /crear."));
    };
    let input = TaskInput {
        code: None,
        title,
        description: None,
        kind,
        priority: Some(priority),
        schedule: Schedule::starting(ports.clock.now()),
        location,
        location_description: None,
        delegate_id: None,
        officer_ids: Vec::new(),
        notes: None,
    };
    match create_task(&*ports.tasks, session.user.actor, input, session.context.clone()).await {
        Ok(task) => Ok(Reply::plain(format!(
            "✅ Tarea creada: <b>{}</b> · {}\nPrioridad: {}",
            escape(&task.code),
            escape(&task.title),
            priority_label(task.priority)
        ))),
        Err(TaskError::Store(error)) => {
            save(session, &draft).await?;
            Err(error.into())
        }
        Err(TaskError::Forbidden) => Ok(Reply::plain("No tienes permiso para crear tareas.")),
        Err(_) => Ok(Reply::plain("No se pudo crear la tarea. Empieza de nuevo con /crear.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_fit_and_decode() {
        for kind in TaskKind::ALL.iter().filter(|kind| **kind != TaskKind::Emergency) {
            let data = format!("c:k:{}", kind.as_str());
            assert!(data.len() <= crate::types::MAX_CALLBACK_DATA);
            assert_eq!(Press::decode(&data), Some(Press::Kind(*kind)));
        }
        assert_eq!(Press::decode("c:k:emergency"), None);
        assert_eq!(Press::decode("c:p:critical"), Some(Press::Priority(Priority::Critical)));
        assert_eq!(Press::decode("c:zz"), None);
        assert_eq!(kind_by_name("Patrulla"), Some(TaskKind::Patrol));
        assert_eq!(priority_by_name("alta"), Some(Priority::High));
    }

    #[test]
    fn drafts_survive_serialisation() {
        let draft = Draft::Confirm {
            kind: TaskKind::Patrol,
            title: "Ronda <norte>".into(),
            priority: Priority::High,
            location: Some((40.4, -3.7)),
        };
        let stored = serde_json::to_string(&draft).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Draft>(&stored).ok(), Some(draft));
    }
}
