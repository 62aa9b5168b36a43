using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace SlimMail.Transport;

/// <summary>
/// Collects a session's replies and sends them in one flush when the session is about to wait for the
/// client (see <see cref="LineReader"/>): replies to pipelined commands leave together, and nothing is
/// flushed twice. Shared by the SMTP and POP3 sessions.
/// </summary>
public sealed class ReplyWriter
{
    private bool _pending;

    /// <summary>Writes into <paramref name="output"/>.</summary>
    public ReplyWriter(PipeWriter output) => Output = output;

    /// <summary>The pipe replies go to; replaced when the connection switches to TLS.</summary>
    public PipeWriter Output { get; set; }

    /// <summary>Queues bytes for the next flush.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        Output.Write(bytes);
        _pending = true;
    }

    /// <summary>Queues <paramref name="text"/>, UTF-8 encoded straight into the pipe.</summary>
    public void Write(ReadOnlySpan<char> text)
    {
        Encoding.UTF8.GetBytes(text, Output);
        _pending = true;
    }

    /// <summary>Sends what is queued, if anything; throws <see cref="IOException"/> when the client has gone.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (!_pending)
        {
            return;
        }

        _pending = false;
        FlushResult result = await Output.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new IOException("the client closed the connection");
        }
    }
}
