using DataMarket.Gateway.Model;
using Microsoft.EntityFrameworkCore;
using OtpNet;

namespace DataMarket.Gateway.Application;

/// <summary>
/// Operators' second factor: a TOTP secret (RFC 6238, 30-second steps, six digits) per account, enrolled by proving a
/// first code and checked at every sign-in. A code counts once: a step already used is refused, so a code seen over
/// a shoulder cannot be replayed.
/// </summary>
public sealed class SecondFactorService(GatewayDbContext db, AccountService accounts, TimeProvider time)
{
    public const string Issuer = "DataMarket";

    public async Task<bool> IsEnabledAsync(string accountId, CancellationToken cancellationToken) =>
        await db.Totp.AnyAsync(t => t.AccountId == accountId && t.EnabledAt != null, cancellationToken);

    /// <summary>The secret to enrol (base32, as authenticator apps take it); the same one until a code confirms it.</summary>
    public async Task<string> PendingSecretAsync(string accountId, CancellationToken cancellationToken)
    {
        var row = await db.Totp.SingleOrDefaultAsync(t => t.AccountId == accountId, cancellationToken);
        if (row?.EnabledAt is not null)
        {
            throw new AccountException("the second factor is already enrolled", StatusCodes.Status409Conflict);
        }

        if (row is null)
        {
            row = new AccountTotp { AccountId = accountId, Secret = Base32Encoding.ToString(KeyGeneration.GenerateRandomKey(20)) };
            db.Totp.Add(row);
            await db.SaveChangesAsync(cancellationToken);
        }

        return row.Secret;
    }

    /// <summary>
    /// Checks a code against the account's secret (one step of clock drift either way) and, for a pending secret,
    /// enrols it. False for a wrong, malformed or reused code, or when no secret exists.
    /// </summary>
    public async Task<bool> VerifyAsync(string accountId, string code, CancellationToken cancellationToken)
    {
        code = code.Trim();
        if (code.Length != 6 || !code.All(char.IsAsciiDigit))
        {
            return false;
        }

        var row = await db.Totp.SingleOrDefaultAsync(t => t.AccountId == accountId, cancellationToken);
        if (row is null)
        {
            return false;
        }

        var totp = new Totp(Base32Encoding.ToBytes(row.Secret));
        if (!totp.VerifyTotp(time.GetUtcNow().UtcDateTime, code, out var step, VerificationWindow.RfcSpecifiedNetworkDelay) || step <= row.LastTimeStep)
        {
            await accounts.RecordAsync(accountId, "second-factor.refused", accountId, cancellationToken);
            return false;
        }

        row.LastTimeStep = step;
        var enrolling = row.EnabledAt is null;
        row.EnabledAt ??= time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        if (enrolling)
        {
            await accounts.RecordAsync(accountId, "second-factor.enrol", accountId, cancellationToken);
        }

        return true;
    }

    /// <summary>The enrolment link an authenticator app understands (what a QR code would hold).</summary>
    public static string OtpAuthUri(string accountName, string secret) =>
        $"otpauth://totp/{Uri.EscapeDataString(Issuer)}:{Uri.EscapeDataString(accountName)}?secret={secret}&issuer={Uri.EscapeDataString(Issuer)}&digits=6&period=30";
}
