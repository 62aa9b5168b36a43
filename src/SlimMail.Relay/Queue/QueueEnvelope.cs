using System.Text.Json.Serialization;

namespace SlimMail.Relay.Queue;

/// <summary>
/// The durable envelope of one queued message (JSON): who sent it, when it arrived, and each recipient's state.
/// Written at the end of the message's file (<c>queue/ID.msg</c>) when it is queued; rewritten atomically into
/// <c>queue/ID.env</c> (temporary file, fsync, rename, directory fsync) after each attempt that leaves the message
/// queued, so a restart knows exactly which recipients still need it.
/// </summary>
public sealed class QueueEnvelope
{
    /// <summary>The queue id (also the file names).</summary>
    public required string Id { get; init; }

    /// <summary>The reverse-path; empty for the null sender (a bounce, which never bounces).</summary>
    public required string Sender { get; init; }

    /// <summary>When the message was accepted.</summary>
    public required DateTimeOffset Arrival { get; init; }

    /// <summary>The message size in bytes (CRLF, as it will be sent).</summary>
    public long Size { get; init; }

    /// <summary>True when the message needs SMTPUTF8 (a non-ASCII address).</summary>
    public bool SmtpUtf8 { get; init; }

    /// <summary>True once the sender was warned that the message is delayed.</summary>
    public bool DelayWarned { get; set; }

    /// <summary>The recipients and their states.</summary>
    public required List<QueueRecipient> Recipients { get; init; }

    /// <summary>True once no recipient is pending.</summary>
    [JsonIgnore]
    public bool IsFinished => Recipients.TrueForAll(r => r.State != RecipientState.Pending && !r.NeedsBounce);
}

/// <summary>One recipient of a queued message.</summary>
public sealed class QueueRecipient
{
    /// <summary>The address as the client gave it.</summary>
    public required string Address { get; init; }

    /// <summary>Pending, delivered, or failed (bounced).</summary>
    public RecipientState State { get; set; }

    /// <summary>Attempts made so far.</summary>
    public int Attempts { get; set; }

    /// <summary>When to try next (pending recipients).</summary>
    public DateTimeOffset NextAttempt { get; set; }

    /// <summary>The last reply or error, for <c>slimmail queue list</c> and the bounce.</summary>
    public string? LastError { get; set; }

    /// <summary>The host that gave <see cref="LastError"/>, if a server did.</summary>
    public string? RemoteMta { get; set; }

    /// <summary>The enhanced status code of a failure (<c>5.1.1</c>, <c>4.4.7</c> for expiry).</summary>
    public string? Status { get; set; }

    /// <summary>True once the sender was sent a delivery-status notification about this failed recipient.</summary>
    public bool Notified { get; set; }

    /// <summary>Failed, and the sender not told yet.</summary>
    [JsonIgnore]
    public bool NeedsBounce => State == RecipientState.Failed && !Notified;
}

/// <summary>Where a recipient stands.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RecipientState>))]
public enum RecipientState
{
    /// <summary>Not delivered yet; will be tried at <see cref="QueueRecipient.NextAttempt"/>.</summary>
    Pending,

    /// <summary>A server accepted it.</summary>
    Delivered,

    /// <summary>Refused permanently or expired; the sender was (or will be) told.</summary>
    Failed,
}

/// <summary>Source-generated JSON for the envelope, so trimmed builds need no reflection.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(QueueEnvelope))]
[JsonSerializable(typeof(List<QueueEnvelope>))]
public sealed partial class QueueJsonContext : JsonSerializerContext;
