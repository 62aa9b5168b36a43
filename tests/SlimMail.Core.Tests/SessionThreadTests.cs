using System.Net;
using System.Net.Sockets;
using SlimMail.Transport;

namespace SlimMail.Tests.Core;

public sealed class SessionThreadTests
{
    [Fact]
    public async Task A_read_after_the_session_went_to_another_thread_is_done_on_the_session_thread()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        {
            string? sessionThread = null;
            string? poolThread = null;
            string? readThread = null;
            Task session = SessionThread.Start(async thread =>
            {
                sessionThread = Thread.CurrentThread.Name;
                var connection = new SocketConnection(server, thread);
                await Task.Delay(10).ConfigureAwait(false);
                poolThread = Thread.CurrentThread.Name;
                System.IO.Pipelines.ReadResult read = await connection.Input.ReadAsync().ConfigureAwait(false);
                readThread = Thread.CurrentThread.Name;
                connection.Input.AdvanceTo(read.Buffer.End);
                await connection.Output.WriteAsync("pong"u8.ToArray()).ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
            }, "test session");

            await Task.Delay(50);
            await client.SendAsync("ping"u8.ToArray());
            var reply = new byte[4];
            Assert.Equal(4, await client.ReceiveAsync(reply));
            await session.WaitAsync(TimeSpan.FromSeconds(10));

            Assert.Equal("pong"u8.ToArray(), reply);
            Assert.Equal("test session", sessionThread);
            Assert.NotEqual("test session", poolThread);
            Assert.Equal("test session", readThread);
        }
    }

    [Fact]
    public async Task A_caller_off_the_session_thread_continues_there_even_when_the_call_finished_before_it_waited()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        using (server)
        {
            string? afterWrite = null;
            string? afterRead = null;
            Task session = SessionThread.Start(async thread =>
            {
                using var stream = new ThreadBoundSocketStream(server, thread);
                await Task.Delay(10).ConfigureAwait(false);

                // The session's thread is idle and the data is there: the call could be over before the await.
                ValueTask write = stream.WriteAsync("ping"u8.ToArray());
                Thread.Sleep(100);
                await write.ConfigureAwait(false);
                afterWrite = Thread.CurrentThread.Name;

                await Task.Delay(10).ConfigureAwait(false);
                ValueTask<int> read = stream.ReadAsync(new byte[4]);
                Thread.Sleep(100);
                await read.ConfigureAwait(false);
                afterRead = Thread.CurrentThread.Name;
            }, "test session");

            var received = new byte[4];
            Assert.Equal(4, await client.ReceiveAsync(received));
            await client.SendAsync("pong"u8.ToArray());
            await session.WaitAsync(TimeSpan.FromSeconds(10));

            Assert.Equal("ping"u8.ToArray(), received);
            Assert.Equal("test session", afterWrite);
            Assert.Equal("test session", afterRead);
        }
    }

    [Fact]
    public async Task A_connection_brings_its_session_back_to_the_session_thread_from_wherever_a_pipe_read_ended()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        {
            string? afterReturn = null;
            string? nextRead = null;
            Task session = SessionThread.Start(async thread =>
            {
                await using var connection = new SocketConnection(server, thread);
                await Task.Delay(10).ConfigureAwait(false);
                // The pipe reader's own await inside may finish before this one is reached: then this continues on
                // the pool thread that called it.
                ValueTask<System.IO.Pipelines.ReadResult> pending = connection.Input.ReadAsync();
                Thread.Sleep(100);
                System.IO.Pipelines.ReadResult read = await pending.ConfigureAwait(false);
                connection.Input.AdvanceTo(read.Buffer.End);

                await connection.ReturnToSessionThreadAsync().ConfigureAwait(false);
                afterReturn = Thread.CurrentThread.Name;
                await connection.Output.WriteAsync("pong"u8.ToArray()).ConfigureAwait(false);
                read = await connection.Input.ReadAsync().ConfigureAwait(false);
                nextRead = Thread.CurrentThread.Name;
                connection.Input.AdvanceTo(read.Buffer.End);
            }, "test session");

            await client.SendAsync("ping"u8.ToArray());
            var reply = new byte[4];
            Assert.Equal(4, await client.ReceiveAsync(reply));
            await client.SendAsync("quit"u8.ToArray());
            await session.WaitAsync(TimeSpan.FromSeconds(10));

            Assert.Equal("pong"u8.ToArray(), reply);
            Assert.Equal("test session", afterReturn);
            Assert.Equal("test session", nextRead);
        }
    }

    [Fact]
    public async Task A_blocked_read_is_woken_by_its_cancellation_and_the_connection_can_still_send()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        {
            Exception? thrown = null;
            Task session = SessionThread.Start(async thread =>
            {
                await using var connection = new SocketConnection(server, thread);
                using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
                try
                {
                    await connection.Input.ReadAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException e)
                {
                    thrown = e;
                }

                await connection.Output.WriteAsync("bye\r\n"u8.ToArray()).ConfigureAwait(false);
            }, "test session");

            await session.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.IsAssignableFrom<OperationCanceledException>(thrown);
            var reply = new byte[16];
            int received = await client.ReceiveAsync(reply);
            Assert.Equal("bye\r\n"u8.ToArray(), reply[..received]);
        }
    }

    [Fact]
    public async Task Reads_and_writes_on_the_session_thread_allocate_nothing()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        using (server)
        {
            long allocated = -1;
            Task session = SessionThread.Start(async thread =>
            {
                using var stream = new ThreadBoundSocketStream(server, thread);
                var buffer = new byte[16];
                await client.SendAsync(new byte[1000]).ConfigureAwait(false);
                // On the session's thread again (the send above may have completed elsewhere): warm up, then count.
                await stream.ReadAsync(buffer.AsMemory(0, 1)).ConfigureAwait(false);
                await stream.WriteAsync(buffer.AsMemory(0, 1)).ConfigureAwait(false);
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 50; i++)
                {
                    await stream.ReadAsync(buffer).ConfigureAwait(false);
                    await stream.WriteAsync(buffer).ConfigureAwait(false);
                }

                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }, "test session");

            await session.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, allocated);
        }
    }

    [Fact]
    public async Task Work_posted_after_the_session_ended_is_refused_so_that_the_caller_does_it()
    {
        SessionThread? ended = null;
        await SessionThread.Start(thread =>
        {
            ended = thread;
            return Task.CompletedTask;
        }, "test session").WaitAsync(TimeSpan.FromSeconds(10));

        bool ran = false;
        Assert.False(ended!.Post(() => ran = true));
        Assert.False(ran);
    }

    [Fact]
    public async Task A_session_that_fails_faults_the_task_after_its_thread_ended()
    {
        Task session = SessionThread.Start(async _ =>
        {
            await Task.Delay(10).ConfigureAwait(false);
            throw new InvalidOperationException("broken");
        }, "test session");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => session.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("broken", error.Message);
    }

    private static async Task<(Socket Server, Socket Client)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await listener.AcceptAsync();
        return (server, client);
    }
}
