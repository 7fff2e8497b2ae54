//! The decisions of one chat turn, apart from the reads and writes that carry them out: which
//! conversation the turn writes, which UTC day pays for it, what a debit, a provider failure or
//! a failed write makes of the turn, whether the credit stays spent, and the records it stores.

use bastion_core::{Owner, Timestamp};
use bastion_store::{
    AppendError, ConversationId, ConversationRecord, Debit, MessageRecord, MessageRole, StoreError,
    TurnWrite,
};

use super::agent_loop::LoopOutcome;
use super::{ChatError, TurnReply};
use crate::message::{ChatMessage, ModelName, cap_answer, title_from};
use crate::provider::ProviderError;

const DAY_SECS: i64 = 86_400;

/// The UTC day (days since the epoch) a turn asked at `now` is charged to.
pub(super) fn credit_day(now: Timestamp) -> i64 {
    now.secs().div_euclid(DAY_SECS)
}

/// When `day`'s credit counter may expire: it outlives its day by one, so a late refund still
/// finds it.
pub(super) fn counter_expiry(day: i64) -> Timestamp {
    Timestamp((day + 2).saturating_mul(DAY_SECS))
}

/// What the debit of one credit on `day` means for the turn: the credits left, or the quota
/// error saying when they come back (the next UTC midnight).
pub(super) fn debit_verdict(debit: Debit, day: i64, allowance: u64) -> Result<u64, ChatError> {
    match debit {
        Debit::Taken { remaining } => Ok(remaining),
        Debit::Exhausted => Err(ChatError::QuotaExceeded {
            resets_at: Timestamp((day + 1).saturating_mul(DAY_SECS)),
            allowance,
        }),
    }
}

/// The conversation a turn writes and the message count it must still have when the turn is
/// stored (`None`: the turn creates it, and loses if anyone else did first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Thread {
    pub conversation: ConversationRecord,
    pub previous_count: Option<u64>,
}

/// The conversation a turn continues: `existing` as read, or a new one titled after `message`
/// under `channel_id` (a channel owner's one conversation) or else a fresh id.
pub(super) fn open_thread(
    owner: &Owner,
    existing: Option<ConversationRecord>,
    channel_id: Option<ConversationId>,
    message: &ChatMessage,
    now: Timestamp,
) -> Thread {
    let previous_count = existing.as_ref().map(|c| c.message_count);
    let conversation = match existing {
        Some(c) => c,
        None => ConversationRecord {
            owner: owner.clone(),
            id: channel_id.unwrap_or_else(|| ConversationId::generate(now)),
            title: title_from(message),
            created_at: now,
            updated_at: now,
            message_count: 0,
        },
    };
    Thread {
        conversation,
        previous_count,
    }
}

/// What a provider failure makes of the turn.
pub(super) fn provider_failure(error: ProviderError) -> ChatError {
    match error {
        ProviderError::Timeout => ChatError::ProviderTimeout,
        other => ChatError::ProviderFailed(other),
    }
}

/// What a failed write makes of the turn: another turn got there first, or the store failed.
pub(super) fn append_failure(error: AppendError) -> ChatError {
    match error {
        AppendError::Conflict => ChatError::Conflict,
        AppendError::Store(s) => ChatError::Store(s),
    }
}

/// The user's half of a turn, fixed before the provider is asked.
pub(super) struct Question<'a> {
    pub message: &'a ChatMessage,
    /// The stored id of the user message (derived from the delivery for a channel turn).
    pub id: String,
    pub asked: Timestamp,
    pub model: &'a ModelName,
}

/// The write that stores a turn: the question and the (capped) answer with its stored steps
/// appended after the thread's messages, the conversation's count and time moved on.
pub(super) fn turn_write(
    thread: Thread,
    question: &Question<'_>,
    answer: &LoopOutcome,
    steps: String,
    answer_id: String,
    answered: Timestamp,
) -> TurnWrite {
    let seq = thread.conversation.message_count;
    let user = MessageRecord {
        seq,
        id: question.id.clone(),
        role: MessageRole::User,
        content: question.message.as_str().to_owned(),
        created_at: question.asked,
        prompt_tokens: 0,
        completion_tokens: 0,
        model: String::new(),
        steps: String::new(),
        stop_reason: String::new(),
    };
    let assistant = MessageRecord {
        seq: seq + 1,
        id: answer_id,
        role: MessageRole::Assistant,
        content: cap_answer(answer.answer.clone()),
        created_at: answered,
        prompt_tokens: answer.usage.prompt_tokens,
        completion_tokens: answer.usage.completion_tokens,
        model: question.model.as_str().to_owned(),
        steps,
        stop_reason: answer.stop.as_str().to_owned(),
    };
    let mut conversation = thread.conversation;
    conversation.message_count = seq + 2;
    conversation.updated_at = answered;
    TurnWrite {
        conversation,
        previous_count: thread.previous_count,
        messages: vec![user, assistant],
    }
}

/// What the caller gets back for a stored turn: the assistant's message, the steps as the
/// loop took them, why it stopped and the counts.
pub(super) fn reply_from(write: TurnWrite, outcome: LoopOutcome) -> Result<TurnReply, ChatError> {
    let TurnWrite {
        conversation,
        mut messages,
        ..
    } = write;
    let message = messages
        .pop()
        .ok_or_else(|| ChatError::Store(StoreError::Corrupt("turn lost its reply".to_owned())))?;
    Ok(TurnReply {
        conversation_id: conversation.id,
        message,
        usage: outcome.usage,
        credits_remaining: outcome.credits_remaining,
        steps: outcome.steps,
        stop_reason: outcome.stop,
        served_by: outcome.served_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::StopReason;
    use crate::message::MAX_ANSWER_BYTES;
    use crate::provider::{ServedBy, Usage};

    fn owner() -> Owner {
        Owner::Telegram(42)
    }

    fn message(text: &str) -> ChatMessage {
        ChatMessage::parse(text).unwrap()
    }

    fn model() -> ModelName {
        ModelName::parse("gpt-test").unwrap()
    }

    fn stored_conversation(count: u64) -> ConversationRecord {
        ConversationRecord {
            owner: owner(),
            id: ConversationId::from_parts(Timestamp(1_000), [7; 16]),
            title: "earlier".to_owned(),
            created_at: Timestamp(1_000),
            updated_at: Timestamp(2_000),
            message_count: count,
        }
    }

    fn answer(content: &str) -> LoopOutcome {
        LoopOutcome {
            answer: content.to_owned(),
            steps: Vec::new(),
            usage: Usage {
                prompt_tokens: 11,
                completion_tokens: 5,
            },
            stop: StopReason::EndTurn,
            credits_remaining: 9,
            served_by: ServedBy::Primary,
        }
    }

    #[test]
    fn a_turn_is_charged_to_the_utc_day_it_was_asked_on() {
        assert_eq!(credit_day(Timestamp(0)), 0);
        assert_eq!(credit_day(Timestamp(DAY_SECS - 1)), 0);
        assert_eq!(credit_day(Timestamp(DAY_SECS)), 1);
        assert_eq!(credit_day(Timestamp(-1)), -1);
    }

    #[test]
    fn a_days_credit_counter_expires_a_full_day_after_the_day_ends() {
        assert_eq!(counter_expiry(0), Timestamp(2 * DAY_SECS));
        assert_eq!(counter_expiry(20_000), Timestamp(20_002 * DAY_SECS));
        assert_eq!(counter_expiry(i64::MAX / 2), Timestamp(i64::MAX));
    }

    #[test]
    fn a_taken_credit_leaves_the_remaining_count() {
        let remaining = debit_verdict(Debit::Taken { remaining: 4 }, 3, 5).unwrap();
        assert_eq!(remaining, 4);
    }

    #[test]
    fn an_exhausted_allowance_refuses_the_turn_until_the_next_utc_midnight() {
        let err = debit_verdict(Debit::Exhausted, 3, 5).unwrap_err();
        assert!(
            matches!(
                err,
                ChatError::QuotaExceeded {
                    resets_at: Timestamp(t),
                    allowance: 5
                } if t == 4 * DAY_SECS
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_turn_on_an_existing_conversation_requires_its_count_to_be_unchanged() {
        let existing = stored_conversation(6);
        let thread = open_thread(
            &owner(),
            Some(existing.clone()),
            Some(ConversationId::from_parts(Timestamp(0), [9; 16])),
            &message("hello there"),
            Timestamp(5_000),
        );
        assert_eq!(
            thread,
            Thread {
                conversation: existing,
                previous_count: Some(6)
            }
        );
    }

    #[test]
    fn a_channel_turn_creates_its_conversation_under_the_channel_id() {
        let id = ConversationId::from_parts(Timestamp(0), [9; 16]);
        let thread = open_thread(
            &owner(),
            None,
            Some(id.clone()),
            &message("  hello   there "),
            Timestamp(5_000),
        );
        assert_eq!(
            thread,
            Thread {
                conversation: ConversationRecord {
                    owner: owner(),
                    id,
                    title: "hello there".to_owned(),
                    created_at: Timestamp(5_000),
                    updated_at: Timestamp(5_000),
                    message_count: 0,
                },
                previous_count: None
            }
        );
    }

    #[test]
    fn a_new_conversation_gets_a_fresh_id_stamped_with_the_time_it_was_asked() {
        let now = Timestamp(5_000);
        let first = open_thread(&owner(), None, None, &message("hi"), now);
        let second = open_thread(&owner(), None, None, &message("hi"), now);
        assert_eq!(first.previous_count, None);
        assert_eq!(first.conversation.message_count, 0);
        assert!(
            first.conversation.id.as_str().starts_with("000000001388"),
            "{}",
            first.conversation.id
        );
        assert_ne!(first.conversation.id, second.conversation.id);
    }

    #[test]
    fn a_provider_timeout_and_other_provider_failures_are_told_apart() {
        assert!(matches!(
            provider_failure(ProviderError::Timeout),
            ChatError::ProviderTimeout
        ));
        assert!(matches!(
            provider_failure(ProviderError::Status(503)),
            ChatError::ProviderFailed(ProviderError::Status(503))
        ));
    }

    #[test]
    fn a_lost_write_race_is_a_conflict_and_a_store_failure_stays_one() {
        assert!(matches!(
            append_failure(AppendError::Conflict),
            ChatError::Conflict
        ));
        assert!(matches!(
            append_failure(AppendError::Store(StoreError::Corrupt("x".to_owned()))),
            ChatError::Store(StoreError::Corrupt(m)) if m == "x"
        ));
    }

    /// The write of `text` answered with `reply`, asked at 5000 as `q-id` and answered at 5003
    /// as `a-id`, on a stored conversation of `count` messages.
    fn write_after(count: u64, text: &str, reply: &str) -> TurnWrite {
        let model = model();
        let question = Question {
            message: &message(text),
            id: "q-id".to_owned(),
            asked: Timestamp(5_000),
            model: &model,
        };
        let thread = Thread {
            conversation: stored_conversation(count),
            previous_count: Some(count),
        };
        turn_write(
            thread,
            &question,
            &answer(reply),
            String::new(),
            "a-id".to_owned(),
            Timestamp(5_003),
        )
    }

    #[test]
    fn a_turn_appends_the_question_and_the_answer_after_the_threads_messages() {
        let write = write_after(4, "what is 2+2?", "four");
        let mut conversation = stored_conversation(6);
        conversation.updated_at = Timestamp(5_003);
        assert_eq!(
            write,
            TurnWrite {
                conversation,
                previous_count: Some(4),
                messages: vec![
                    MessageRecord {
                        seq: 4,
                        id: "q-id".to_owned(),
                        role: MessageRole::User,
                        content: "what is 2+2?".to_owned(),
                        created_at: Timestamp(5_000),
                        prompt_tokens: 0,
                        completion_tokens: 0,
                        model: String::new(),
                        steps: String::new(),
                        stop_reason: String::new(),
                    },
                    MessageRecord {
                        seq: 5,
                        id: "a-id".to_owned(),
                        role: MessageRole::Assistant,
                        content: "four".to_owned(),
                        created_at: Timestamp(5_003),
                        prompt_tokens: 11,
                        completion_tokens: 5,
                        model: "gpt-test".to_owned(),
                        steps: String::new(),
                        stop_reason: "end_turn".to_owned(),
                    },
                ],
            }
        );
    }

    #[test]
    fn an_overlong_answer_is_stored_capped() {
        let long = "x".repeat(MAX_ANSWER_BYTES + 10);
        let write = write_after(0, "talk", &long);
        assert_eq!(write.messages[1].content.len(), MAX_ANSWER_BYTES);
    }

    #[test]
    fn the_reply_is_the_stored_answer_with_the_usage_and_credits_left() {
        let write = write_after(0, "hi", "hello");
        let expected = write.messages[1].clone();
        let usage = Usage {
            prompt_tokens: 11,
            completion_tokens: 5,
        };
        let reply = reply_from(write, answer("hello")).unwrap();
        assert_eq!(
            reply,
            TurnReply {
                conversation_id: stored_conversation(0).id,
                message: expected,
                usage,
                credits_remaining: 9,
                steps: Vec::new(),
                stop_reason: StopReason::EndTurn,
                served_by: ServedBy::Primary,
            }
        );
    }
}
