using System.Runtime.InteropServices;

namespace SlimMail.Delivery;

/// <summary>
/// Wakes one dedicated thread with one system call. On Linux an eventfd: <see cref="Set"/> is one write(2),
/// the sleeper's read(2) returns, and nobody takes a lock. Monitor.Pulse, by contrast, signals while the
/// pulser still holds the monitor, so the woken thread first fails to re-take it and sleeps again: on a
/// virtual machine, where each wake-up of an idle CPU is expensive, that hand-off cost seven futex calls and
/// an extra context switch per message (strace of a one-session run). Elsewhere a semaphore stands in.
/// A Set before the Wait is not lost: the Wait then returns at once.
/// </summary>
internal sealed partial class WakeSignal : IDisposable
{
    private const int EfdCloExec = 0x80000;
    private const int EIntr = 4;

    private readonly int _fd = -1;
    private readonly SemaphoreSlim? _fallback;

    public WakeSignal()
    {
        if (OperatingSystem.IsLinux())
        {
            _fd = EventFd(0, EfdCloExec);
        }

        if (_fd < 0)
        {
            _fallback = new SemaphoreSlim(0, 1);
        }
    }

    /// <summary>Wakes the thread in (or about to enter) <see cref="Wait"/>.</summary>
    public void Set()
    {
        if (_fallback is not null)
        {
            if (_fallback.CurrentCount == 0)
            {
                _fallback.Release();
            }

            return;
        }

        ulong one = 1;
        while (Write(_fd, ref one, sizeof(ulong)) < 0 && Marshal.GetLastPInvokeError() == EIntr)
        {
        }
    }

    /// <summary>Blocks until <see cref="Set"/> (consuming it).</summary>
    public void Wait()
    {
        if (_fallback is not null)
        {
            _fallback.Wait();
            return;
        }

        ulong value;
        while (Read(_fd, out value, sizeof(ulong)) < 0 && Marshal.GetLastPInvokeError() == EIntr)
        {
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            _ = Close(_fd);
        }

        _fallback?.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, ref ulong value, nint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, out ulong value, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
