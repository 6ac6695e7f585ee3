//! What the bot says, in Spanish: labels of the domain's values, tasks as messages with the
//! buttons their state allows, and the callback payloads those buttons carry.

use gad_domain::tasks::state::{TaskAction, TaskStatus};
use gad_domain::tasks::task::{Priority, Task, TaskId, TaskKind};
use serde::Deserialize;
use uuid::Uuid;

use crate::text::{escape, fit};
use crate::types::{Button, InlineKeyboard};

pub fn status_label(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Scheduled => "Programada",
        TaskStatus::InProgress => "En curso",
        TaskStatus::Paused => "En pausa",
        TaskStatus::Completed => "Finalizada",
        TaskStatus::Cancelled => "Cancelada",
    }
}

pub fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "Baja",
        Priority::Medium => "Media",
        Priority::High => "Alta",
        Priority::Urgent => "Urgente",
        Priority::Critical => "Crítica",
    }
}

pub fn kind_label(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Patrol => "Patrulla",
        TaskKind::Investigation => "Investigación",
        TaskKind::Surveillance => "Vigilancia",
        TaskKind::Intervention => "Intervención",
        TaskKind::Administrative => "Administrativa",
        TaskKind::Training => "Formación",
        TaskKind::Emergency => "Emergencia",
    }
}

/// The button of each action an officer takes from the chat (cancelling is for supervisors, in
/// GAD itself).
fn action_button(action: TaskAction) -> Option<(&'static str, char)> {
    match action {
        TaskAction::Start => Some(("▶️ Iniciar", 's')),
        TaskAction::Pause => Some(("⏸ Pausar", 'p')),
        TaskAction::Resume => Some(("⏯ Reanudar", 'r')),
        TaskAction::Complete => Some(("✅ Finalizar", 'f')),
        TaskAction::Cancel => None,
    }
}

/// A task button's payload: `t:<action>:<task id>:<version>` (at most 56 bytes). The version
/// makes a replayed or stale press recognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskPress {
    pub action: TaskAction,
    pub task: TaskId,
    pub version: i64,
}

impl TaskPress {
    pub fn encode(&self) -> Option<String> {
        let (_, letter) = action_button(self.action)?;
        Some(format!("t:{letter}:{}:{}", self.task.as_uuid().simple(), self.version))
    }

    /// `None` for anything that is not exactly what [`Self::encode`] writes.
    pub fn decode(data: &str) -> Option<Self> {
        let mut parts = data.strip_prefix("t:")?.split(':');
        let action = match parts.next()? {
            "s" => TaskAction::Start,
            "p" => TaskAction::Pause,
            "r" => TaskAction::Resume,
            "f" => TaskAction::Complete,
            _ => return None,
        };
        let id = parts.next()?;
        let version = parts.next()?.parse().ok()?;
        if parts.next().is_some() || id.len() != 32 {
            return None;
        }
        Some(Self { action, task: TaskId::from_uuid(Uuid::try_parse(id).ok()?), version })
    }
}

/// The buttons the state machine allows on `task` now.
pub fn task_keyboard(task: &Task) -> Option<InlineKeyboard> {
    let row: Vec<Button> = task
        .status
        .allowed_actions()
        .into_iter()
        .filter_map(|action| {
            let (label, _) = action_button(action)?;
            Button::new(label, TaskPress { action, task: task.id, version: task.version }.encode()?)
        })
        .collect();
    (!row.is_empty()).then(|| vec![row])
}

/// One task as a message: code, title, priority and state.
pub fn task_card(task: &Task) -> String {
    let mut card = format!(
        "<b>{}</b> · {}\nPrioridad: {}\nEstado: {}",
        escape(&task.code),
        escape(&task.title),
        priority_label(task.priority),
        status_label(task.status),
    );
    if let Some(place) = &task.location_description {
        card.push_str(&format!("\nLugar: {}", escape(place)));
    }
    fit(card)
}

/// The fields of a task as an event carried it (for notifications).
#[derive(Debug, Deserialize)]
pub struct EventTask {
    pub code: String,
    pub title: String,
    pub priority: Priority,
    pub location: Option<EventPoint>,
    pub location_description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EventPoint {
    pub lat: f64,
    pub lng: f64,
}

pub const HELP: &str = "<b>Comandos de GAD</b>\n\
/mis_tareas – tus tareas activas, con botones para Iniciar, Pausar, Reanudar y Finalizar\n\
/historial – tus últimas tareas terminadas\n\
/estadisticas – tus cifras de los últimos 30 días\n\
/disponible – marcarte disponible\n\
/no_disponible – marcarte no disponible\n\
/crear – crear una tarea paso a paso (operadores y superiores)\n\
/cancelar – abandonar la conversación en curso\n\
/ayuda – esta ayuda\n\
Comparte tu ubicación en el chat para actualizar tu posición.";

pub const INVITATION: &str = "Este chat no está vinculado a ninguna cuenta de GAD.\n\
Para vincularlo, genera un código en GAD (<code>POST /api/v1/users/me/telegram-link</code>) y abre el \
enlace que recibes, o envía <code>/start &lt;código&gt;</code> aquí.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presses_round_trip_and_fit_telegrams_limit() {
        let press = TaskPress { action: TaskAction::Complete, task: TaskId::generate(), version: i64::MAX };
        let data = press.encode().expect("an officer's action");
        assert!(data.len() <= crate::types::MAX_CALLBACK_DATA, "{}", data.len());
        assert_eq!(TaskPress::decode(&data), Some(press));
        for forged in ["", "t:x:0:1", "t:s:zz:1", &format!("{data}:1"), "t:s:00000000000000000000000000000000:v"] {
            assert_eq!(TaskPress::decode(forged), None, "{forged}");
        }
        assert_eq!(TaskPress { action: TaskAction::Cancel, ..press }.encode(), None);
    }
}
