using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace SlimMail.Host.Hosting;

/// <summary>
/// The sd_notify protocol (systemd's <c>Type=notify</c>): one datagram per state change, sent to the Unix
/// socket named by <c>NOTIFY_SOCKET</c> (a path, or <c>@name</c> for the abstract namespace). Without that
/// variable every call does nothing, so the same binary runs under systemd and anywhere else.
/// </summary>
internal sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endPoint;

    public SystemdNotifier(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket) || OperatingSystem.IsWindows())
        {
            return;
        }

        // "@name" is Linux's abstract namespace, written with a leading NUL on the wire.
        string path = notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket;
        _endPoint = new UnixDomainSocketEndPoint(path);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>Created from the environment, as systemd passes it.</summary>
    public static SystemdNotifier FromEnvironment() => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    /// <summary>True when running under a service manager that listens.</summary>
    public bool IsEnabled => _socket is not null;

    /// <summary>The watchdog interval systemd asked for (<c>WatchdogSec=</c>), if any and if it is meant for this process.</summary>
    public static TimeSpan? WatchdogInterval()
    {
        string? usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        string? pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (usec is null || !long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out long micros) || micros <= 0)
        {
            return null;
        }

        if (pid is not null && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }

        return TimeSpan.FromMicroseconds(micros);
    }

    public void Ready(string status) => Send($"READY=1\nSTATUS={OneLine(status)}\nMAINPID={Environment.ProcessId}");

    // systemd (Type=notify-reload, and for the record with Type=notify) wants the CLOCK_MONOTONIC time of the reload.
    public void Reloading() => Send($"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds()}\nSTATUS=reloading the configuration");

    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={OneLine(status)}");

    public void Status(string status) => Send("STATUS=" + OneLine(status));

    public void Watchdog() => Send("WATCHDOG=1");

    public void Dispose() => _socket?.Dispose();

    private void Send(string message)
    {
        if (_socket is null)
        {
            return;
        }

        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(message), _endPoint!);
        }
        catch (SocketException)
        {
            // The manager went away (or never listened): nothing a mail server can do about it.
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static long MonotonicMicroseconds() =>
        Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000);
}
