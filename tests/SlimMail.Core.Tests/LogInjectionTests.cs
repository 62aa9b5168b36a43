using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using SlimMail.Auth;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;
using SlimMail.Transport;

namespace SlimMail.Tests.Core;

public class LogInjectionTests
{
    private sealed class ListLogger : ILogger
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue(formatter(state, exception));
    }

    [Fact]
    public async Task An_auth_identity_with_line_breaks_cannot_forge_a_log_line_and_the_password_is_never_logged()
    {
        var logger = new ListLogger();
        var toServer = new System.IO.Pipelines.Pipe();
        var toClient = new System.IO.Pipelines.Pipe();
        var connection = new PipeConnection(toServer, toClient, new IPEndPoint(IPAddress.Loopback, 1));
        var info = new SmtpSessionInfo(connection.RemoteEndPoint, connection.LocalEndPoint, ListenerRole.Mx);
        var options = new SmtpServerOptions { Hostname = "mx.test", Authenticator = new FakeAuthenticator(), AuthThrottle = new AuthThrottle(delayStep: TimeSpan.Zero) };
        var session = new SmtpSession(connection, info, options, new MemoryMessageHandler(), logger, CancellationToken.None, CancellationToken.None);
        string forged = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0eve\r\n2026-01-01 info: authenticated as admin\0hunter2"));
        await toServer.Writer.WriteAsync(Encoding.ASCII.GetBytes($"EHLO x\r\nAUTH PLAIN {forged}\r\nQUIT\r\n"));
        await toServer.Writer.CompleteAsync();
        await session.RunAsync().WaitAsync(TimeSpan.FromSeconds(10));

        string failure = Assert.Single(logger.Lines, l => l.Contains("authentication failed", StringComparison.Ordinal));
        Assert.DoesNotContain('\n', failure);
        Assert.DoesNotContain('\r', failure);
        Assert.DoesNotContain(logger.Lines, l => l.Contains("hunter2", StringComparison.Ordinal));
    }
}
