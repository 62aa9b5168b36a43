using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace SlimMail.Transport;

/// <summary>
/// A socket call made off a session's thread, done on that thread only once its caller waits for it, and the
/// caller's continuation run there right after. Completing a task on the session's thread is not enough: if the
/// call is over before the caller reaches its <c>await</c>, the caller goes on synchronously where it was, and the
/// session stays on a pool thread from then on, blocking it on the client. Nothing happens for a caller that never
/// waits: every caller of a stream awaits.
/// </summary>
internal sealed class SessionThreadCall<T> : IValueTaskSource<T>, IValueTaskSource
{
    private readonly SessionThread _thread;
    private readonly Func<T> _call;
    private T? _result;
    private ExceptionDispatchInfo? _error;
    private volatile bool _done;

    private SessionThreadCall(SessionThread thread, Func<T> call)
    {
        _thread = thread;
        _call = call;
    }

    public static ValueTask<T> Start(SessionThread thread, Func<T> call) => new(new SessionThreadCall<T>(thread, call), 0);

    /// <summary>As <see cref="Start"/>, for a call whose result the caller does not want.</summary>
    public static ValueTask StartIgnoringResult(SessionThread thread, Func<T> call) => new(new SessionThreadCall<T>(thread, call), 0);

    public ValueTaskSourceStatus GetStatus(short token) =>
        !_done ? ValueTaskSourceStatus.Pending
        : _error is null ? ValueTaskSourceStatus.Succeeded
        : _error.SourceException is OperationCanceledException ? ValueTaskSourceStatus.Canceled
        : ValueTaskSourceStatus.Faulted;

    public T GetResult(short token)
    {
        if (!_done)
        {
            throw new InvalidOperationException("The call has not been made yet: it is made when awaited.");
        }

        _error?.Throw();
        return _result!;
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ExecutionContext? context = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
        Action run = () => Run(continuation, state, context);
        if (!_thread.Post(run))
        {
            // The session's thread has let go of the session (only a last dispose can be this late): a pool thread
            // makes the call, never the one registering the continuation, which must not run inside this method.
            ThreadPool.UnsafeQueueUserWorkItem(static run => run(), run, preferLocal: false);
        }
    }

    private void Run(Action<object?> continuation, object? state, ExecutionContext? context)
    {
        try
        {
            _result = _call();
        }
        catch (Exception e)
        {
            _error = ExceptionDispatchInfo.Capture(e);
        }

        _done = true;
        if (context is null)
        {
            continuation(state);
        }
        else
        {
            ExecutionContext.Run(context, static s => { var (c, st) = ((Action<object?>, object?))s!; c(st); }, (continuation, state));
        }
    }
}
