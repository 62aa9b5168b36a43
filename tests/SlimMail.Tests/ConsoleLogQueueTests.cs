using System.Text;
using SlimMail.Host.Logging;

namespace SlimMail.Tests;

/// <summary>The queue between the console logger and stdout: nothing lost, nothing torn, few writes.</summary>
public sealed class ConsoleLogQueueTests
{
    [Fact]
    public async Task Lines_from_many_threads_all_arrive_whole_in_each_threads_order_and_in_far_fewer_writes()
    {
        var stdout = new RecordingStream();
        var stderr = new RecordingStream();
        const int Threads = 8;
        const int PerThread = 2_000;
        using (var queue = new ConsoleLogQueue(stdout, stderr))
        {
            Task[] writers = Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
            {
                for (int i = 0; i < PerThread; i++)
                {
                    queue.Enqueue($"thread {t} line {i} ünïcode\n", toStandardError: false);
                }
            })).ToArray();
            await Task.WhenAll(writers);
        }

        string[] lines = stdout.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Threads * PerThread, lines.Length);
        for (int t = 0; t < Threads; t++)
        {
            string prefix = $"thread {t} line ";
            int[] order = lines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
                .Select(l => int.Parse(l.AsSpan(prefix.Length, l.IndexOf(' ', prefix.Length) - prefix.Length), provider: null))
                .ToArray();
            Assert.Equal(Enumerable.Range(0, PerThread), order);
        }

        Assert.All(lines, l => Assert.EndsWith(" ünïcode", l, StringComparison.Ordinal));
        Assert.True(stdout.Writes < Threads * PerThread / 10, $"{stdout.Writes} writes for {Threads * PerThread} lines");
        Assert.Equal(0, stderr.Writes);
    }

    [Fact]
    public void Lines_marked_for_standard_error_go_there_and_the_rest_to_standard_output()
    {
        var stdout = new RecordingStream();
        var stderr = new RecordingStream();
        using (var queue = new ConsoleLogQueue(stdout, stderr))
        {
            queue.Enqueue("info line\n", toStandardError: false);
            queue.Enqueue("error line\n", toStandardError: true);
            queue.Enqueue("another info line\n", toStandardError: false);
        }

        Assert.Equal("info line\nanother info line\n", stdout.Text);
        Assert.Equal("error line\n", stderr.Text);
    }

    [Fact]
    public async Task A_lone_line_is_written_without_waiting_for_more()
    {
        var stdout = new RecordingStream();
        using var queue = new ConsoleLogQueue(stdout, new RecordingStream());
        queue.Enqueue("alone\n", toStandardError: false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (stdout.Text.Length == 0)
        {
            await Task.Delay(1, timeout.Token);
        }

        Assert.Equal("alone\n", stdout.Text);
    }

    [Fact]
    public void A_line_logged_after_shutdown_is_still_written()
    {
        var stdout = new RecordingStream();
        var queue = new ConsoleLogQueue(stdout, new RecordingStream());
        queue.Enqueue("before\n", toStandardError: false);
        queue.Dispose();
        queue.Enqueue("after\n", toStandardError: false);
        Assert.Equal("before\nafter\n", stdout.Text);
    }

    [Fact]
    public void A_closed_output_loses_log_lines_but_does_not_throw_at_the_logger()
    {
        using var queue = new ConsoleLogQueue(new BrokenStream(), new BrokenStream());
        queue.Enqueue("lost\n", toStandardError: false);
        queue.Dispose();
        queue.Enqueue("lost too\n", toStandardError: false);
    }

    private sealed class RecordingStream : Stream
    {
        private readonly MemoryStream _bytes = new();
        private readonly Lock _lock = new();

        public int Writes { get; private set; }

        public string Text
        {
            get
            {
                lock (_lock)
                {
                    return Encoding.UTF8.GetString(_bytes.ToArray());
                }
            }
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count)
        {
            lock (_lock)
            {
                Writes++;
                _bytes.Write(buffer, offset, count);
            }
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class BrokenStream : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("Broken pipe");
        public override void Flush() => throw new IOException("Broken pipe");
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
