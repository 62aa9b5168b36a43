using SlimMail.Relay;

namespace SlimMail.Tests;

public sealed class AttemptScheduleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static List<string> TakeDue(AttemptSchedule schedule, DateTimeOffset now)
    {
        var taken = new List<string>();
        while (schedule.TryTakeDue(now, out string? id))
        {
            taken.Add(id);
        }

        return taken;
    }

    [Fact]
    public void Messages_come_out_when_due_earliest_first_and_once()
    {
        var schedule = new AttemptSchedule();
        schedule.Schedule("late", T0.AddMinutes(10));
        schedule.Schedule("early", T0.AddMinutes(1));
        schedule.Schedule("now", T0);

        Assert.Equal(["now"], TakeDue(schedule, T0));
        Assert.Equal(T0.AddMinutes(1), schedule.Next);
        Assert.Equal(["early", "late"], TakeDue(schedule, T0.AddHours(1)));
        Assert.Empty(TakeDue(schedule, T0.AddHours(2)));
        Assert.Null(schedule.Next);
        Assert.Equal(0, schedule.Count);
    }

    [Fact]
    public void An_earlier_time_wins_and_a_later_one_does_not_postpone()
    {
        var schedule = new AttemptSchedule();
        schedule.Schedule("m", T0.AddHours(1));
        schedule.Schedule("m", T0); // a flush
        schedule.Schedule("m", T0.AddHours(2));

        Assert.Equal(T0, schedule.Next);
        Assert.Equal(["m"], TakeDue(schedule, T0));
        Assert.Empty(TakeDue(schedule, T0.AddHours(3))); // the hour-later entry was superseded, not a second attempt
    }

    [Fact]
    public void A_removed_message_never_comes_out_and_can_be_scheduled_again()
    {
        var schedule = new AttemptSchedule();
        schedule.Schedule("gone", T0);
        schedule.Schedule("kept", T0.AddMinutes(5));
        schedule.Remove("gone");

        Assert.Equal(T0.AddMinutes(5), schedule.Next);
        Assert.Empty(TakeDue(schedule, T0));

        schedule.Schedule("gone", T0.AddMinutes(1));
        Assert.Equal(["gone", "kept"], TakeDue(schedule, T0.AddMinutes(5)));
    }

    [Fact]
    public void A_message_taken_and_rescheduled_comes_out_at_its_new_time()
    {
        var schedule = new AttemptSchedule();
        schedule.Schedule("m", T0);
        Assert.Equal(["m"], TakeDue(schedule, T0));

        schedule.Schedule("m", T0.AddMinutes(30)); // the attempt was deferred
        Assert.Empty(TakeDue(schedule, T0.AddMinutes(29)));
        Assert.Equal(["m"], TakeDue(schedule, T0.AddMinutes(30)));
    }
}
