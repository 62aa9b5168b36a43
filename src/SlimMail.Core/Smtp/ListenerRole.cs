namespace SlimMail.Smtp;

/// <summary>What a listener is for; decides who may send what (see the roles table in the product contract).</summary>
public enum ListenerRole
{
    /// <summary>Inbound mail from the internet: anyone may send to configured domains; relaying needs AUTH.</summary>
    Mx,

    /// <summary>Mail clients: AUTH is required before MAIL; an authenticated user may relay.</summary>
    Submission,

    /// <summary>Loopback only, trusted, no AUTH: cron, daemons and <c>slimmail sendmail</c>.</summary>
    Local,
}
