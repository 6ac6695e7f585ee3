//! The bot: each update (handed over by the inbox, which makes it count once) is processed as
//! the linked user, through the same domain use cases and policies as the REST API.

use std::sync::Arc;

use gad_domain::audit::RequestContext;
use gad_domain::clock::Clock;
use gad_domain::error::StoreError;
use gad_domain::stats::StatsStore;
use gad_domain::tasks::geo::GeoPoint;
use gad_domain::tasks::officer as officers;
use gad_domain::tasks::officer::{Availability, LocationReport, OfficerError, OfficerId, OfficerStore};
use gad_domain::tasks::state::{TaskAction, TaskStatus};
use gad_domain::tasks::task::{TaskError, TaskQuery, TaskStore};
use gad_domain::tasks::use_cases::{list_tasks, read_task, transition_task};
use gad_domain::telegram::{BotBookkeeping, LinkedUser, Redemption, TelegramLinks};

use crate::api::{BotApi, BotApiError};
use crate::conversation::{self, Reply};
use crate::render::{HELP, INVITATION, TaskPress, status_label, task_card, task_keyboard};
use crate::text::{escape, fit};
use crate::types::{CallbackQuery, InlineKeyboard, Message, Update, UpdateKind};

/// The ports the bot works through, shared with the REST API.
#[derive(Clone)]
pub struct BotPorts {
    pub links: Arc<dyn TelegramLinks>,
    pub bookkeeping: Arc<dyn BotBookkeeping>,
    pub tasks: Arc<dyn TaskStore>,
    pub officers: Arc<dyn OfficerStore>,
    pub stats: Arc<dyn StatsStore>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BotPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotPorts").finish_non_exhaustive()
    }
}

/// How many tasks `/mis_tareas` and `/historial` show.
const LISTED: usize = 10;

/// The bot of one GAD instance.
#[derive(Clone)]
pub struct Bot {
    api: BotApi,
    ports: BotPorts,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot").field("api", &self.api).finish_non_exhaustive()
    }
}

impl Bot {
    pub fn new(api: BotApi, ports: BotPorts) -> Self {
        Self { api, ports }
    }

    /// Processes `update` (the inbox makes sure that happens once). A storage failure is
    /// returned, so that the update is tried again; failures of the replies themselves are
    /// logged (what the user asked for is done).
    pub async fn handle(&self, update: &Update) -> Result<(), StoreError> {
        let outcome = match &update.kind {
            UpdateKind::Message(message) => self.on_message(update.update_id, message).await,
            UpdateKind::CallbackQuery(query) => self.on_callback(update.update_id, query).await,
            UpdateKind::Other => Ok(()),
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("telegram_updates_total", "outcome" => "processed").increment(1);
                Ok(())
            }
            Err(Failure::Store(error)) => {
                metrics::counter!("telegram_updates_total", "outcome" => "failed").increment(1);
                Err(error)
            }
            Err(Failure::Api(error)) => {
                metrics::counter!("telegram_updates_total", "outcome" => "reply_failed").increment(1);
                tracing::warn!(%error, update_id = update.update_id, "the bot's reply failed");
                Ok(())
            }
        }
    }

    async fn on_message(&self, update_id: i64, message: &Message) -> Result<(), Failure> {
        if !message.chat.kind.is_empty() && message.chat.kind != "private" {
            return Ok(());
        }
        let chat = message.chat.id;
        let text = message.text.as_deref().map(str::trim).unwrap_or_default();
        let (command, argument) = command_of(text);
        if command == Some("/start")
            && let Some(code) = argument
        {
            let username = message.from.as_ref().and_then(|user| user.username.as_deref());
            return self.link(chat, code, username).await;
        }
        let Some(user) = self.ports.links.linked_user(chat).await? else {
            self.say(chat, INVITATION).await?;
            return Ok(());
        };
        let session = Session { bot: self, chat, user, context: context(update_id) };
        match (command, message.location) {
            (Some(command), _) => session.command(command).await,
            (None, Some(location)) => {
                session.location(location.latitude, location.longitude, location.horizontal_accuracy).await
            }
            (None, None) if text.is_empty() => Ok(()),
            (None, None) => session.text(text).await,
        }
    }

    async fn link(&self, chat: i64, code: &str, username: Option<&str>) -> Result<(), Failure> {
        let reply = if !gad_domain::telegram::is_start_parameter(code) {
            "Ese código no es válido. Genera uno nuevo en GAD."
        } else {
            match self.ports.links.redeem(code, chat, username).await? {
                Redemption::Linked(_) => "✅ Chat vinculado a tu cuenta de GAD. Usa /ayuda para ver los comandos.",
                Redemption::Used => "Ese código ya se usó. Genera uno nuevo en GAD.",
                Redemption::Expired => "Ese código ha caducado (vale 10 minutos). Genera uno nuevo en GAD.",
                Redemption::Unknown => "Ese código no es válido. Genera uno nuevo en GAD.",
            }
        };
        self.say(chat, reply).await
    }

    async fn on_callback(&self, update_id: i64, query: &CallbackQuery) -> Result<(), Failure> {
        let chat = query.message.as_ref().map_or(query.from.id, |message| message.chat.id);
        let Some(user) = self.ports.links.linked_user(chat).await? else {
            self.api.answer_callback_query(&query.id, Some("Este chat no está vinculado a GAD.")).await?;
            return Ok(());
        };
        let session = Session { bot: self, chat, user, context: context(update_id) };
        let data = query.data.as_deref().unwrap_or_default();
        let message_id = query.message.as_ref().map(|message| message.message_id);
        let answer = if let Some(press) = TaskPress::decode(data) {
            session.press(press, message_id).await?
        } else if let Some(step) = conversation::Press::decode(data) {
            session.conversation_press(step).await?
        } else {
            "Acción no válida.".to_owned()
        };
        self.api.answer_callback_query(&query.id, Some(&answer)).await?;
        Ok(())
    }

    async fn say(&self, chat: i64, html: &str) -> Result<(), Failure> {
        self.api.send_message(chat, &fit(html.to_owned()), None).await?;
        Ok(())
    }

    async fn say_with(&self, chat: i64, html: String, keyboard: Option<&InlineKeyboard>) -> Result<(), Failure> {
        self.api.send_message(chat, &fit(html), keyboard).await?;
        Ok(())
    }
}

/// `/command@bot argument` → (`/command`, `argument`).
fn command_of(text: &str) -> (Option<&str>, Option<&str>) {
    if !text.starts_with('/') {
        return (None, None);
    }
    let (head, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let command = head.split_once('@').map_or(head, |(command, _)| command);
    let argument = rest.trim();
    (Some(command), (!argument.is_empty()).then_some(argument))
}

/// How audit rows and logs name a bot action.
fn context(update_id: i64) -> RequestContext {
    RequestContext { request_id: Some(format!("telegram-{update_id}")), ip: None, user_agent: Some("telegram".into()) }
}

/// Why an update could not be handled.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The update must be delivered again.
    Store(StoreError),
    /// A reply did not get through.
    Api(BotApiError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<BotApiError> for Failure {
    fn from(error: BotApiError) -> Self {
        Self::Api(error)
    }
}

/// One update from a linked chat.
pub(crate) struct Session<'a> {
    pub(crate) bot: &'a Bot,
    pub(crate) chat: i64,
    pub(crate) user: LinkedUser,
    pub(crate) context: RequestContext,
}

impl Session<'_> {
    pub(crate) fn ports(&self) -> &BotPorts {
        &self.bot.ports
    }

    pub(crate) async fn say(&self, html: &str) -> Result<(), Failure> {
        self.bot.say(self.chat, html).await
    }

    pub(crate) async fn reply(&self, reply: Reply) -> Result<(), Failure> {
        self.bot.say_with(self.chat, reply.text, reply.keyboard.as_ref()).await
    }

    async fn command(&self, command: &str) -> Result<(), Failure> {
        match command {
            "/start" => self.say(&format!("Hola de nuevo. Este chat está vinculado a GAD.\n\n{HELP}")).await,
            "/ayuda" | "/help" => self.say(HELP).await,
            "/mis_tareas" => self.my_tasks().await,
            "/historial" => self.history().await,
            "/estadisticas" => self.statistics().await,
            "/disponible" => self.availability(Availability::Available).await,
            "/no_disponible" => self.availability(Availability::Unavailable).await,
            "/crear" => self.reply(conversation::start(self).await?).await,
            "/cancelar" => {
                let ended = self.ports().bookkeeping.end_conversation(self.chat).await?;
                self.say(if ended {
                    "Conversación cancelada. No se ha creado nada."
                } else {
                    "No hay ninguna conversación en curso."
                })
                .await
            }
            _ => self.say("No conozco ese comando. Usa /ayuda para ver los comandos.").await,
        }
    }

    async fn text(&self, text: &str) -> Result<(), Failure> {
        match conversation::answer_text(self, text).await? {
            Some(reply) => self.reply(reply).await,
            None => self.say("No entiendo ese mensaje. Usa /ayuda para ver los comandos.").await,
        }
    }

    async fn location(&self, lat: f64, lng: f64, accuracy_m: Option<f64>) -> Result<(), Failure> {
        if let Some(reply) = conversation::answer_location(self, lat, lng).await? {
            return self.reply(reply).await;
        }
        let Some(officer) = self.user.officer_id else {
            return self.say("Tu cuenta no tiene perfil de agente: no hay posición que actualizar.").await;
        };
        let Ok(point) = GeoPoint::new(lat, lng) else {
            return self.say("Esa ubicación no es válida.").await;
        };
        let accuracy_m = accuracy_m.filter(|accuracy| gad_domain::tasks::geo::parse_accuracy(*accuracy).is_ok());
        let report = LocationReport { point, accuracy_m, recorded_at: self.ports().clock.now() };
        let outcome = officers::report_location(
            &*self.ports().officers,
            self.user.actor,
            OfficerId::from_uuid(officer),
            report,
            self.context.clone(),
        )
        .await;
        match outcome {
            Ok(_) => self.say("📍 Posición actualizada.").await,
            Err(OfficerError::ConsentRequired) => {
                self.say(
                    "No puedo guardar tu posición: no has dado el consentimiento de seguimiento de ubicación \
                     (<code>location_tracking</code>). Puedes darlo en GAD y volver a compartirla.",
                )
                .await
            }
            Err(OfficerError::Store(error)) => Err(error.into()),
            Err(_) => self.say("No puedes actualizar esa posición.").await,
        }
    }

    async fn my_tasks(&self) -> Result<(), Failure> {
        let tasks = self.tasks(vec![TaskStatus::Scheduled, TaskStatus::InProgress, TaskStatus::Paused]).await?;
        if tasks.is_empty() {
            return self.say("No tienes tareas activas.").await;
        }
        for task in &tasks {
            self.bot.say_with(self.chat, task_card(task), task_keyboard(task).as_ref()).await?;
        }
        Ok(())
    }

    async fn history(&self) -> Result<(), Failure> {
        let tasks = self.tasks(vec![TaskStatus::Completed, TaskStatus::Cancelled]).await?;
        if tasks.is_empty() {
            return self.say("Aún no tienes tareas terminadas.").await;
        }
        let mut text = String::from("<b>Tus últimas tareas terminadas</b>");
        for task in &tasks {
            text.push_str(&format!(
                "\n• <b>{}</b> · {} – {}",
                escape(&task.code),
                escape(&task.title),
                status_label(task.status)
            ));
        }
        self.say(&text).await
    }

    /// The linked user's own tasks in `statuses`, newest first (what officers see through REST).
    async fn tasks(&self, statuses: Vec<TaskStatus>) -> Result<Vec<gad_domain::tasks::task::Task>, Failure> {
        let query =
            TaskQuery { statuses, assigned_to_user: Some(self.user.actor.id), limit: LISTED, ..TaskQuery::default() };
        list_tasks(&*self.ports().tasks, self.user.actor, query).await.map_err(task_failure)
    }

    async fn statistics(&self) -> Result<(), Failure> {
        let stats = self.ports().stats.user(self.user.actor.id, 30).await?.value;
        let count = |status| stats.assigned.by_status.get(&status).copied().unwrap_or_default();
        let mean = stats
            .assigned
            .mean_completion_seconds
            .map_or_else(|| "–".to_owned(), |seconds| format!("{} min", (seconds / 60.0).round()));
        let text = format!(
            "<b>Tus cifras de los últimos {} días</b>\nTareas asignadas: {}\nEn curso: {}\nEn pausa: {}\n\
             Finalizadas: {}\nTiempo medio de finalización: {}\nTareas creadas: {}",
            stats.days,
            stats.assigned.total,
            count(TaskStatus::InProgress),
            count(TaskStatus::Paused),
            stats.assigned.completed,
            mean,
            stats.created,
        );
        self.say(&text).await
    }

    async fn availability(&self, availability: Availability) -> Result<(), Failure> {
        let Some(officer) = self.user.officer_id else {
            return self.say("Tu cuenta no tiene perfil de agente.").await;
        };
        let outcome = officers::set_availability(
            &*self.ports().officers,
            self.user.actor,
            OfficerId::from_uuid(officer),
            availability,
            self.context.clone(),
        )
        .await;
        match outcome {
            Ok(_) if availability == Availability::Available => self.say("🟢 Ahora estás disponible.").await,
            Ok(_) => self.say("🔴 Ahora estás no disponible.").await,
            Err(OfficerError::Store(error)) => Err(error.into()),
            Err(_) => self.say("No puedes cambiar esa disponibilidad.").await,
        }
    }

    /// A task button: applied through the transition use case, then the message shows the task
    /// as it now stands. Returns the short answer of the press.
    async fn press(&self, press: TaskPress, message_id: Option<i64>) -> Result<String, Failure> {
        let tasks = &*self.ports().tasks;
        let task = match read_task(tasks, self.user.actor, press.task).await {
            Ok(task) => task,
            Err(TaskError::Store(error)) => return Err(error.into()),
            Err(_) => return Ok("Esa tarea no existe o no es tuya.".into()),
        };
        if task.version != press.version {
            self.show(&task, message_id).await?;
            return Ok("Esa tarea cambió desde entonces: te muestro su estado actual.".into());
        }
        let clock = &*self.ports().clock;
        let outcome =
            transition_task(tasks, self.user.actor, press.task, press.action, None, self.context.clone(), clock).await;
        match outcome {
            Ok(task) => {
                self.show(&task, message_id).await?;
                Ok(match press.action {
                    TaskAction::Start => "Tarea iniciada.",
                    TaskAction::Pause => "Tarea en pausa.",
                    TaskAction::Resume => "Tarea reanudada.",
                    TaskAction::Complete | TaskAction::Cancel => "Tarea finalizada.",
                }
                .into())
            }
            Err(TaskError::Store(error)) => Err(error.into()),
            Err(refusal) => {
                self.show(&task, message_id).await?;
                Ok(match refusal {
                    TaskError::OfficerBusy => "Ya tienes otra tarea en curso: páusala o finalízala antes.",
                    TaskError::InvalidTransition { .. } => "Esa acción no es posible en el estado actual.",
                    TaskError::Forbidden => "No tienes permiso para esa acción.",
                    _ => "No se pudo aplicar esa acción.",
                }
                .into())
            }
        }
    }

    /// Replaces the pressed message with the task's current card and buttons.
    async fn show(&self, task: &gad_domain::tasks::task::Task, message_id: Option<i64>) -> Result<(), Failure> {
        let keyboard = task_keyboard(task);
        match message_id {
            Some(message_id) => {
                self.bot.api.edit_message_text(self.chat, message_id, &task_card(task), keyboard.as_ref()).await?;
            }
            None => self.bot.say_with(self.chat, task_card(task), keyboard.as_ref()).await?,
        }
        Ok(())
    }

    async fn conversation_press(&self, press: conversation::Press) -> Result<String, Failure> {
        match conversation::answer_press(self, press).await? {
            Some(reply) => {
                self.reply(reply).await?;
                Ok("Hecho.".into())
            }
            None => Ok("Esa conversación ya terminó. Usa /crear para empezar otra.".into()),
        }
    }
}

/// Refusals of a listing are answered; storage failures retry the update.
fn task_failure(error: TaskError) -> Failure {
    match error {
        TaskError::Store(error) => Failure::Store(error),
        other => Failure::Store(StoreError::Unexpected(other.to_string().into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_split_from_their_argument_and_bot_name() {
        assert_eq!(command_of("/start abc"), (Some("/start"), Some("abc")));
        assert_eq!(command_of("/mis_tareas@gad_bot"), (Some("/mis_tareas"), None));
        assert_eq!(command_of("hola"), (None, None));
    }
}
