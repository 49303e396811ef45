import ArgumentParser
import Findings
import KubeClient
import KubeConfig
import MetricRules
import RESP
import SimStore
import Verification

/// The one place where an error becomes one of kverify's exit codes (`ExitStatus`). Lower modules throw errors
/// that say what happened; only the CLI decides what that means for the process.
enum ExitCodes {
    static func status(for error: any Error) -> ExitStatus {
        switch error {
        case let error as KVerifyError: error.status
        case let error as KubeError: status(for: error)
        case let error as KubeConfigError: error.isCredentialFailure ? .unreachable : .usageOrInput
        case is RuleFileError: .usageOrInput
        case is RedisError: .unreachable
        case is SimError: .unreachable
        default: .checkFailed
        }
    }

    /// 2 when the user's input is at fault, 1 when a verified object is missing, 3 when the cluster cannot be
    /// reached or refuses us.
    static func status(for error: KubeError) -> ExitStatus {
        if error.isCausedByInput { return .usageOrInput }
        return error.code == .notFound ? .checkFailed : .unreachable
    }

    /// A pattern run ends with the status of the error that stopped it, else with its report's verdict.
    static func status(for result: PatternRun.Result) -> ExitStatus {
        if let stoppedBy = result.stoppedBy {
            let status = status(for: stoppedBy)
            if status != .verified { return status }
        }
        return result.report.exitStatus
    }
}
